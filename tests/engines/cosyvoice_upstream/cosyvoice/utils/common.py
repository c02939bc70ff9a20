"""Stand-in of upstream's cosyvoice/utils/common.py: the seed helper and the instruction list."""

from __future__ import annotations

import random

import numpy as np
import torch

from cosyvoice import standin

instruct_list = [
    f"You are a helpful assistant. 请用{dialect}表达。<|endofprompt|>"
    for dialect in (
        "广东话",
        "东北话",
        "甘肃话",
        "贵州话",
        "河南话",
        "湖北话",
        "湖南话",
        "江西话",
        "闽南话",
        "宁夏话",
        "山西话",
        "陕西话",
        "山东话",
        "上海话",
        "四川话",
        "天津话",
        "云南话",
    )
] + [
    "You are a helpful assistant. Please say a sentence as loudly as possible.<|endofprompt|>",
    "You are a helpful assistant. Please say a sentence in a very soft voice.<|endofprompt|>",
    "You are a helpful assistant. 请用尽可能慢地语速说一句话。<|endofprompt|>",
    "You are a helpful assistant. 请用尽可能快地语速说一句话。<|endofprompt|>",
    "You are a helpful assistant. 请非常开心地说一句话。<|endofprompt|>",
    "You are a helpful assistant. 请非常伤心地说一句话。<|endofprompt|>",
    "You are a helpful assistant. 请非常生气地说一句话。<|endofprompt|>",
    "You are a helpful assistant. 我想体验一下小猪佩奇风格，可以吗？<|endofprompt|>",  # noqa: RUF001
    "You are a helpful assistant. 你可以尝试用机器人的方式解答吗？<|endofprompt|>",  # noqa: RUF001
]


def set_all_random_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    standin.record("seed", seed=seed)
