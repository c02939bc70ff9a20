"""Sentence splitting for streaming: one piece per sentence, none longer than a limit.

A sentence ends at ``. ! ? ;`` (or a run of them, with any closing quotes or brackets) followed
by whitespace, and at a line break. It also ends right after the Chinese and Japanese full
stop, exclamation and question marks and semicolon (U+3002, U+FF01, U+FF1F, U+FF1B, and the
half-width U+FF61), with no space needed, and at ``. ! ? ;`` between two CJK characters. A full
stop does not end a sentence after a listed abbreviation ("Dr.", "e.g."), after a single letter
("J. Smith"), or when the next word starts with a lower-case letter; a full stop between digits
("3.5") is never followed by whitespace, so it never splits.

A sentence longer than ``max_chars`` is cut after commas and colons (and after the CJK comma,
enumeration comma and colon, U+FF0C, U+3001, U+FF64, U+FF1A, with no space needed), and a
clause still too long between words. Nothing is ever cut inside a word: a single word longer
than ``max_chars`` (or a run of CJK text with no punctuation) is a piece of its own, longer than
the limit.

The *leading clause* rule (:func:`lead_clause`, named by ``CLAUSE_RULE`` in engine versions)
decides where a text's first sentence is cut so its first words can be spoken, and streamed,
before the rest of it is made.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence

# Lower case, without the final full stop.
ABBREVIATIONS = frozenset(
    {"mr", "mrs", "ms", "dr", "prof", "st", "mt", "vs", "approx", "cf", "e.g", "i.e"}
)
# Abbreviations only before a number ("No. 5", "Fig. 2"); elsewhere these are words ("I said no.").
ABBREVIATIONS_BEFORE_NUMBERS = frozenset({"no", "nos", "fig", "p", "pp", "vol", "ch"})

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_CJK_STOPS = "\u3002\uff01\uff1f\uff1b\uff61"
# Each alternative starts only where its run of punctuation starts and takes the run whole
# (possessive), so a long run of "!!!!" is looked at once, not once per character.
_END = re.compile(
    "(?<![.!?;\u2026])[.!?;\u2026]++[\"'\u201d\u2019)\\]\u00bb]*+(?=\\s)"
    f"|(?<![{_CJK_STOPS}])[{_CJK_STOPS}]++[\u300d\u300f\u201d\u2019\uff09)]*+"
    f"|(?P<between>(?<=[{_CJK}])[.!?;]++(?=[{_CJK}]))"
)
_WORD_BEFORE = re.compile(r"(\S+)\Z")
_NEXT = re.compile(r"\s*[\"'\u201c\u2018(\[]*(.?)")
_CLAUSE_CUT = re.compile(
    "(?<=[,:] )|(?<=[\uff0c\u3001\uff1a\uff64] )|(?<=[\uff0c\u3001\uff1a\uff64])(?! )"
)
_WORD_CUT = re.compile("(?<= )")
_LOOK_BACK = 40

# Engines that use the leading clause rule name it in their version: change the name whenever a
# change to the rule (or to CLAUSE_MAX_WORDS) could move a cut.
CLAUSE_RULE = "clause1"
CLAUSE_MAX_WORDS = 3
CLAUSE_MARKS = frozenset(",;:\uff0c\uff1b\uff1a\u3001")
_CLOSERS = "\"')]\u00bb\u201d\u2019\u300d\u300f\uff09"
# A word: one CJK character with the punctuation after it, or a run of anything else but space.
_CLAUSE_WORD = re.compile(f"[{_CJK}][^\\s{_CJK}]*|[^\\s{_CJK}]+")


def split_sentences(text: str, max_chars: int) -> list[str]:
    """Cut ``text`` into sentences, and sentences longer than ``max_chars`` into clauses or
    runs of words.

    Pieces are non-empty, in order, with runs of whitespace made single spaces. Removing all
    whitespace from ``" ".join(pieces)`` and from ``text`` gives the same string. Empty or
    blank text gives no pieces.
    """
    if max_chars < 1:
        raise ValueError(f"max_chars must be at least 1, not {max_chars}")
    pieces: list[str] = []
    for sentence in _sentences(text):
        pieces.extend(_fit(sentence, max_chars))
    return pieces


def _sentences(text: str) -> Iterator[str]:
    for line in text.splitlines():
        start = 0
        for end in _ends(line):
            yield from _tidy(line[start:end])
            start = end
        yield from _tidy(line[start:])


def _ends(line: str) -> Iterator[int]:
    for found in _END.finditer(line):
        if found.group("between"):
            yield found.end()
            continue
        stops = found.group().rstrip("\"'\u201d\u2019)]\u00bb\u300d\u300f\uff09")
        if set(stops) <= {".", "\u2026"} and not _full_stop_ends(line, found):
            continue
        yield found.end()


def _full_stop_ends(line: str, found: re.Match[str]) -> bool:
    following = _NEXT.match(line, found.end())
    after = following.group(1) if following else ""
    if after.islower():
        return False
    window = line[max(0, found.start() - _LOOK_BACK) : found.start()]
    before = _WORD_BEFORE.search(window)
    word = before.group(1).lstrip("\"'\u201c\u2018([").lower() if before else ""
    if word in ABBREVIATIONS or (word in ABBREVIATIONS_BEFORE_NUMBERS and after.isdigit()):
        return False
    return not (len(word) == 1 and word.isalpha())


def _tidy(text: str) -> list[str]:
    tidied = " ".join(text.split())
    return [tidied] if tidied else []


def _fit(sentence: str, max_chars: int) -> list[str]:
    if len(sentence) <= max_chars:
        return [sentence]
    pieces: list[str] = []
    for clause in _pack(_CLAUSE_CUT.split(sentence), max_chars):
        if len(clause) <= max_chars:
            pieces.append(clause)
        else:
            pieces.extend(_pack(_WORD_CUT.split(clause), max_chars))
    return pieces


def _pack(parts: list[str], max_chars: int) -> list[str]:
    """Join neighbouring parts while they fit; a part too long on its own stays alone.

    Each part keeps the space that followed it, so joining parts gives back the text.
    """
    packed: list[str] = []
    current = ""
    for part in parts:
        if current and len((current + part).rstrip()) > max_chars:
            packed.append(current.strip())
            current = part
        else:
            current += part
    if current.strip():
        packed.append(current.strip())
    return packed


def lead_clause(words: Sequence[str], max_words: int = CLAUSE_MAX_WORDS) -> tuple[int, bool]:
    """Where to cut a first sentence, given as its words: (how many words come first, whether
    they end at a clause mark). ``(0, False)``: do not cut.

    A sentence of at most twice ``max_words`` words is not cut: it is quick to make whole,
    and a cut costs some naturalness. A longer one is cut after the last word within its first
    ``max_words`` that ends in a comma, semicolon or colon (ASCII or CJK, before any closing
    quotes or brackets), and else right after word ``max_words``.
    """
    if max_words < 1:
        raise ValueError(f"max_words must be at least 1, not {max_words}")
    if len(words) <= 2 * max_words:
        return 0, False
    for count in range(max_words, 0, -1):
        if ends_clause(words[count - 1]):
            return count, True
    return max_words, False


def ends_clause(word: str) -> bool:
    """Whether ``word`` ends in a clause mark (closing quotes and brackets aside)."""
    stripped = word.rstrip(_CLOSERS)
    return bool(stripped) and stripped[-1] in CLAUSE_MARKS


def split_lead_clause(sentence: str, max_words: int = CLAUSE_MAX_WORDS) -> list[str]:
    """``sentence`` cut by :func:`lead_clause`: ``[clause, rest]``, or ``[sentence]`` uncut.

    Words are runs between spaces, except that each CJK character is a word of its own (with
    the punctuation that follows it), so CJK text without spaces is cut too. The two parts are
    stripped; put together they hold every character of ``sentence`` in order.
    """
    spans = [m.span() for m in _CLAUSE_WORD.finditer(sentence)]
    count, _ = lead_clause([sentence[a:b] for a, b in spans], max_words)
    if not count:
        return [sentence]
    cut = spans[count - 1][1]
    return [sentence[:cut].strip(), sentence[cut:].strip()]
