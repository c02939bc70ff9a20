"""Speed of the Chinese and num2words normalizers on 5,000 characters (the default
``api.max_text_chars``), and of the first Chinese call (wetext loads its grammars then).

Usage: ``python bench/text_normalize_languages.py [--runs N]``. Prints a Markdown block: the
machine and, per text, the median and worst time over ``N`` runs of ``normalize``.
"""

# The samples are Chinese text, written as such: full-width punctuation is meant.
# ruff: noqa: RUF001

from __future__ import annotations

import argparse
import datetime
import sys
import time
from functools import partial
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from engine_rtf import cpu_model  # sibling scripts
from text_normalize import timed

from steadyvoice.text import normalize, normalizer_for

CHARS = 5_000
TEXTS = {
    ("zh", "prose (nothing to normalize)"): "今天天气很好，我们去公园散步吧。银行的服务很周到。",
    ("zh", "dense (money, dates, times, phones, percentages)"): (
        "您本月账单金额为1,234.56元，还款日为2024年3月5日，请于下午3:30前拨打95588，"
        "年利率为3.85%，卡号6222021234567890123。"
    ),
    ("de", "dense (numbers)"): "Es sind 21 Grad, 1.234,5 Liter und -3 Punkte; Konto 0301234. ",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    start = time.perf_counter()
    normalize("1", "zh")
    first = (time.perf_counter() - start) * 1000
    print(f"### Text normalization by language, {datetime.date.today()}")
    print(f"{cpu_model()}, one thread, {CHARS} characters of input, {args.runs} runs.")
    print(f"First Chinese call (loads wetext's grammars): {first:.0f} ms.\n")
    print("| language | normalizer | text | normalized chars | median / worst ms |")
    print("| --- | --- | --- | ---: | ---: |")
    for (language, name), sample in TEXTS.items():
        text = (sample * (CHARS // len(sample) + 1))[:CHARS]
        spoken, recorded = normalize(text, language)
        assert normalizer_for(language) is not None
        median, worst = timed(partial(normalize, text, language), args.runs)
        print(f"| {language} | {recorded} | {name} | {len(spoken)} | {median:.0f} / {worst:.0f} |")


if __name__ == "__main__":
    main()
