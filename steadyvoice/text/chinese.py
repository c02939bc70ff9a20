"""Chinese text normalization: numbers, money, dates, times, percentages and phone numbers as
Chinese words, by wetext.

wetext (WeNet's runtime for WeTextProcessing's grammars, the normalizer CosyVoice uses) ships
its compiled grammars in the wheel and runs them with kaldifst: no download, no pynini. It is
imported on first use, so a service that never speaks Chinese never loads it (about 0.4 s).

Four rules of our own run first, each for input wetext misreads (docs/text.md):

- thousands separators go: ``1,000,000.00`` (wetext reads ``一元,零零零,…`` after a ``¥``);
- a ``¥`` or ``￥`` before an amount that ``元`` follows goes (``¥1000000.00元`` would read
  ``十万元零点零零元``), as it would be said twice;
- a run of 12 or more digits (bank card and account numbers), and digits in groups of three
  or four separated by single spaces (``138 1234 5678``, ``6222 0212 3456 7890``), are read
  digit by digit, the way wetext reads a phone number (``幺`` for 1): wetext mixes digits and
  counts in such runs; so is a number that starts with a ``+`` country code, the ``+`` read
  ``加`` (``+86 10 12345678`` would read ``正八十六 十 一千二百…``).

The text is cut after the CJK full stop, exclamation and question marks, semicolon, comma and
enumeration comma (U+3002, U+FF01, U+FF1F, U+FF1B, U+FF0C, U+3001) and line breaks, and each
piece is normalized on its own: wetext's work grows faster than the length of its input, and
none of its rules crosses these marks. A piece still longer than 200 characters is cut again,
after its last space within the limit, else at the limit (outside a run of digits if it can):
so 5,000 characters cost about 0.1 ms each, whatever they are, where one 5,000-character piece
would take seconds. Whitespace around each piece is kept (wetext strips it).
"""

from __future__ import annotations

import os
import re
import threading
from functools import cache
from importlib.metadata import version
from typing import Any

from steadyvoice.errors import Busy

# Our own rules (the four above, and the cutting): raise when they change.
RULES = "zh-1"
_PACKAGE = "wetext"

_CUT = re.compile("(?<=[\u3002\uff01\uff1f\uff1b\uff0c\u3001\n])")
_GROUPED = re.compile(r"(?<![0-9,])[0-9]{1,3}(?:,[0-9]{3})+(?![0-9,])")
_YUAN_SIGN = re.compile("[\u00a5\uffe5](?=[0-9][0-9.]*\u5143)")
_DIGIT_RUN = re.compile(
    r"(?<![0-9 ])[0-9]{3,4}(?: [0-9]{4}){2,}(?: [0-9]{1,4})?(?![0-9])"  # 138 1234 5678
    r"|(?<![0-9])[0-9]{12,}(?![0-9])"  # 6222021234567890123
    r"|(?<![0-9A-Za-z+])\+[0-9]+(?:[ -][0-9]+)*(?![0-9])"  # +86 10 1234 5678
)
_DIGIT_WORDS = str.maketrans("0123456789", "零幺二三四五六七八九")
# wetext leaves text with no digit alone, except for a few symbols it also reads.
_WORK = re.compile("[0-9\uff10-\uff19%\u2103\u00b0]")
_MAX_PIECE = 200
# kaldifst does not say that one graph may be used by several threads at once.
_LOCK = threading.Lock()
# A dense 5,000-character text takes about half a second, and requests are checked on the
# threads that also check keys: a few at a time, and one more is told to retry (503 ``busy``)
# rather than holding a thread while it queues.
MAX_CONCURRENT = max(2, os.cpu_count() or 1)
_CALLERS = threading.BoundedSemaphore(MAX_CONCURRENT)
RETRY_SECONDS = 1
# Full-width digits read the same; wetext is several times slower on them.
_FULL_WIDTH_DIGITS = str.maketrans(
    "\uff10\uff11\uff12\uff13\uff14\uff15\uff16\uff17\uff18\uff19", "0123456789"
)


@cache
def version_tag() -> str:
    """What a job records: our rules and the wetext release, e.g. ``zh-1+wetext0.1.8``."""
    return f"{RULES}+{_PACKAGE}{version(_PACKAGE)}"


def normalize_chinese(text: str) -> str:
    """Write numbers, money, dates, times, percentages and phone numbers in ``text`` as the
    Chinese words a reader says. Text with nothing to read comes back unchanged."""
    if not _WORK.search(text):
        return text
    if not _CALLERS.acquire(blocking=False):
        raise Busy(
            f"{MAX_CONCURRENT} Chinese texts are being normalized; retry in a second",
            limit=MAX_CONCURRENT,
            retry_after=RETRY_SECONDS,
        )
    try:
        return _normalize(text.translate(_FULL_WIDTH_DIGITS))
    finally:
        _CALLERS.release()


def _normalize(text: str) -> str:
    text = _YUAN_SIGN.sub("", _GROUPED.sub(lambda m: m.group().replace(",", ""), text))
    text = _DIGIT_RUN.sub(_digit_by_digit, text)
    return "".join(_piece(part) for piece in _CUT.split(text) for part in _bounded(piece))


def _digit_by_digit(found: re.Match[str]) -> str:
    written = found.group()
    plus = "\u52a0" if written.startswith("+") else ""
    return plus + re.sub("[ +-]", "", written).translate(_DIGIT_WORDS)


def _bounded(piece: str) -> list[str]:
    parts: list[str] = []
    while len(piece) > _MAX_PIECE:
        cut = max(piece.rfind(" ", 0, _MAX_PIECE), piece.rfind("\t", 0, _MAX_PIECE)) + 1
        if cut <= 0:
            cut = _MAX_PIECE
            while cut > 1 and piece[cut - 1].isdigit() and piece[cut].isdigit():
                cut -= 1
            if cut == 1:
                cut = _MAX_PIECE
        parts.append(piece[:cut])
        piece = piece[cut:]
    parts.append(piece)
    return parts


def _piece(piece: str) -> str:
    if not _WORK.search(piece):
        return piece
    body = piece.strip()
    start = len(piece) - len(piece.lstrip())
    with _LOCK:
        spoken: str = _wetext().normalize(body, lang="zh")
    return f"{piece[:start]}{spoken}{piece[start + len(body) :]}"


@cache
def _wetext() -> Any:
    import wetext  # type: ignore[import-untyped]

    return wetext
