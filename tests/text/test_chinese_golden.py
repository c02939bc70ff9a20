"""The Chinese normalizer's outputs for a fixed corpus, pinned to its version.

Jobs record ``zh-<our rules>+wetext<release>`` beside the text they spoke, so one version must
always mean one output. A change to our rules (steadyvoice/text/chinese.py: raise ``RULES``) or
a new wetext release (the version changes by itself) needs new outputs recorded:

    .venv/bin/python tests/text/test_chinese_golden.py

which writes golden/<version>.json and prints its hash; then add the hash to PINNED. A recorded
file is never edited: PINNED holds its hash.
"""

# The corpus is Chinese text, written as such: its full-width punctuation is meant.
# ruff: noqa: RUF001

from __future__ import annotations

import re

import pytest
from golden_cases import Golden, digest  # type: ignore[import-not-found]

from steadyvoice.errors import Busy
from steadyvoice.text import chinese
from steadyvoice.text.chinese import normalize_chinese, version_tag

PINNED = {
    "zh-1+wetext0.1.8": "5b327f44c74c3c42f38771cb3ebf82c8388dd0f30cbeb4d396de009d8be98c23",
}
CORPUS = (
    # No digits: unchanged, byte for byte.
    "您好，欢迎致电客户服务中心。",
    # Money.
    "您好，您本月的账单金额为42元。",
    "账单金额为¥1,234.56元，最低还款额为￥123.45元。",
    "本期应还1,000,000.00元，已还¥1000000.00元。",
    "转账$30和100美元，手续费5元。",
    "存款利息为2.5万元，贷款余额为3.5亿元。",
    # Dates.
    "还款日为2024年3月5日。",
    "账单日：2024-03-05，到期日：2024/04/05。",
    "活动时间为5月1日至5月5日。",
    # Times.
    "请于下午3:30前办理。",
    "营业时间为9:00-17:30。",
    "交易时间：2023年12月31日23:59:59。",
    # Percentages.
    "年利率为3.85%，比去年下降0.2个百分点。",
    "增长了12.5%，占比0.5%。",
    # Phone, card and account numbers.
    "请拨打客服热线95588或400-820-8820。",
    "请拨打13812345678或138 1234 5678联系我们。",
    "客服电话010-12345678，国际来电请拨+86 10 12345678。",
    "您尾号1234的卡片已激活。",
    "卡号6222021234567890123，账号6222 0212 3456 7890 123。",
    # Other numbers.
    "第3名，共有1,998人参加，温度-3℃，约有1/3的人，重1.5kg。",
    # Japanese-style and full-width digits, mixed scripts.
    "２０２４年的营业额为１２３万元。",
    "Hello 123 world，共5个。",
    # Whitespace around pieces is kept.
    " 前面有空格 3个 ，后面 4个 ",
    # A piece of more than 200 characters without CJK punctuation is cut at a space.
    "订单" + "Order 12 shipped on 2024-03-05 at 9:30, total 5 items " * 5,
    "",
)


GOLDEN = Golden(version_tag(), normalize_chinese, CORPUS, "tests/text/test_chinese_golden.py")


def test_recorded_outputs_were_never_edited() -> None:
    assert digest(GOLDEN.recorded()) == PINNED.get(version_tag()), (
        "the golden file of a version must not change once recorded; raise RULES in "
        "steadyvoice/text/chinese.py and record a new file instead"
    )


def test_outputs_match_the_version() -> None:
    assert [written for written, _ in GOLDEN.recorded()] == list(CORPUS), (
        "the corpus changed: raise RULES in steadyvoice/text/chinese.py and record a new file"
    )
    changed = GOLDEN.changed()
    assert not changed, (
        f"the Chinese normalizer's output changed under {version_tag()!r}; raise RULES and "
        f"record new golden outputs. (written, recorded, now): {changed}"
    )


def test_every_ascii_digit_is_spoken() -> None:
    for written, spoken in GOLDEN.recorded():
        assert not re.search("[0-9]", spoken), (written, spoken)


def test_full_width_digits_read_as_ascii_ones() -> None:
    assert chinese.normalize_chinese("金额为１２３元。") == chinese.normalize_chinese(
        "金额为123元。"
    )


def test_past_the_concurrent_bound_a_caller_is_told_to_retry() -> None:
    """Requests are checked on the threads that also check keys: they never queue here."""
    held = 0
    try:
        while chinese._CALLERS.acquire(blocking=False):
            held += 1
        assert held == chinese.MAX_CONCURRENT
        with pytest.raises(Busy) as refused:
            chinese.normalize_chinese("共42元。")
        assert refused.value.details["retry_after"] == chinese.RETRY_SECONDS
        assert chinese.normalize_chinese("你好。") == "你好。"  # nothing to read: no slot taken
    finally:
        for _ in range(held):
            chinese._CALLERS.release()
    assert chinese.normalize_chinese("共42元。") == "共四十二元。"


if __name__ == "__main__":
    GOLDEN.record()
