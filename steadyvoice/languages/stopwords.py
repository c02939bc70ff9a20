"""Function words that mark text as a voice's own language: a guard against false refusals.

English full of French loanwords ("crème brûlée and pain au chocolat") can look French to any
n-gram identifier; "the" and "and" say it is English. Each list keeps only words that are not
also common words of another language the identifier chooses among (so no "in", "is", "was",
"die" or "de"). Languages without a list rely on the identifier alone.
"""

from __future__ import annotations

import re


def _set(words: str) -> frozenset[str]:
    return frozenset(words.split())


_WORDS: dict[str, frozenset[str]] = {
    "en": _set(
        "the and you your our this that with have been were would should could please thank "
        "thanks from they their there what which who she it its not can if but about into "
        "than then when where how why these those very more only"
    ),
    "de": _set(
        "der und ist nicht ich sie wir mit für auf ein eine einen zu von bitte sind haben "
        "wird auch oder aber wenn ihr ihre"
    ),
    "fr": _set("et est vous nous votre vos avec pour dans sur une être sont cette aux elle pas"),
    "es": _set("los las usted muy pero gracias sus y"),
    "it": _set("gli della è sono nel alla anche grazie questo questa delle degli che"),
    "nl": _set("het een niet voor zijn wij uw naar ook maar bij dat"),
    "pt": _set("os das não são você obrigado obrigada muito também uma seu em"),
}
_WORD = re.compile(r"[^\W\d_]+(?:['\u2019][^\W\d_]+)?")

# Distinct function words of the voice's language, one per this many words (one at least), mark
# the text as (also) in it. A short English text full of loanwords has one or two ("and", "the");
# a German sentence quoting "The Voice of the People" has one distinct for 29 words: not enough.
# Long text needs no rescue: the identifier is sure of it.
WORDS_PER_FOUND = 10


def has_own_words(text: str, languages: tuple[str, ...]) -> bool:
    """Whether ``text`` has enough distinct function words of one of ``languages``."""
    words = [w.lower() for w in _WORD.findall(text)]
    needed = max(1, len(words) // WORDS_PER_FOUND)
    for language in languages:
        own = _WORDS.get(language)
        if own is not None and len(own.intersection(words)) >= needed:
            return True
    return False
