"""Refuse text the chosen voice cannot speak: ``text_language_unsupported``.

The rule (docs/text.md, "Languages"):

1. Scripts. Every voice reads Latin letters (names, brands, units); besides, it reads the scripts
   of its own languages (Chinese: Han; Japanese: Han and kana; Korean: Hangul...). Any other
   letter is refused, whatever its share: no engine here passes it through (Piper says "Chinese
   letter" for every Han character and spells Cyrillic letter by letter). The exception is a
   Greek letter standing alone (pi, alpha), which voices read as its name.
2. Latin-script languages. When most letters are Latin, an offline identifier
   (:mod:`.identify`) must be sure: at least ``MIN_WORDS`` words, one language not the
   voice's at probability ``CONFIDENT`` or more, and the voice's own languages together under
   ``DOUBT``, and too few function words of the voice's languages (:mod:`.stopwords`: "the",
   "and"...). Otherwise the text is accepted.

A voice of any language (``*``: the fake engine, a Piper voice whose config names none) is never
refused.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from steadyvoice.engines.base import ANY_LANGUAGE, Engine
from steadyvoice.errors import TextLanguageUnsupported
from steadyvoice.languages import identify
from steadyvoice.languages.codes import describe, language_name
from steadyvoice.languages.detect import (
    CONFIDENT,
    LATIN_LANGUAGES,
    MIN_WORDS,
    detect,
    word_count,
)
from steadyvoice.languages.scripts import (
    LATIN,
    OTHER,
    SCRIPT_LANGUAGES,
    language_scripts,
    script_of,
)
from steadyvoice.languages.stopwords import has_own_words

DOUBT = 0.05  # the voice's languages together below this: the identifier rules them out
SYMBOL_SCRIPTS = frozenset({"Greek"})  # a lone letter of these is a symbol (pi, alpha)
COSYVOICE_DOCS = "docs/engines/cosyvoice.md"


@dataclass(frozen=True)
class Finding:
    """What in a text a voice cannot speak."""

    script: str
    language: str | None
    letters: int  # letters of that script (all letters, for a Latin-script language)
    total: int  # letters in the text
    first: str  # the first run of such letters
    position: int  # where it starts (characters)
    probability: float | None = None  # the identifier's, for a Latin-script language


def refuse_unspoken(text: str, languages: tuple[str, ...], engine: Engine, voice: str) -> None:
    """Raise ``text_language_unsupported`` if ``voice`` (an engine voice or a profile id), which
    speaks ``languages`` (:func:`~steadyvoice.languages.voices.voice_languages`), cannot speak
    ``text``."""
    found = unspoken(text, languages)
    if found is not None:
        raise refusal(found, engine, voice, languages)


def unspoken(text: str, languages: tuple[str, ...]) -> Finding | None:
    """What in ``text`` a voice speaking ``languages`` cannot say; None if it can say it all."""
    if ANY_LANGUAGE in languages or not languages:
        return None
    readable = {LATIN}.union(*(language_scripts(lang) for lang in languages))
    runs = _letter_runs(text)
    total = sum(len(run) for _, run, _ in runs)
    foreign = [
        (script, run, at)
        for script, run, at in runs
        if script not in readable and not (script in SYMBOL_SCRIPTS and len(run) == 1)
    ]
    if foreign:
        return _foreign_script(foreign, total)
    latin = sum(len(run) for script, run, _ in runs if script == LATIN)
    if total and latin * 2 >= total:
        return _latin_language(text, languages, latin, total)
    return None


def _letter_runs(text: str) -> list[tuple[str, str, int]]:
    """(script, letters, start) for each run of consecutive letters of one script."""
    runs: list[tuple[str, str, int]] = []
    current, start, script = "", 0, ""
    for i, char in enumerate(text):
        if current and unicodedata.category(char).startswith("M"):
            current += char  # a vowel sign or accent belongs to its letter (Devanagari...)
            continue
        this = script_of(char) if char.isalpha() else ""
        if this == OTHER:
            this = ""
        if this != script and current:
            runs.append((script, current, start))
            current = ""
        if this and not current:
            start = i
        current += char if this else ""
        script = this
    if current:
        runs.append((script, current, start))
    return runs


def _foreign_script(foreign: list[tuple[str, str, int]], total: int) -> Finding:
    by_script: dict[str, int] = {}
    for script, run, _ in foreign:
        by_script[script] = by_script.get(script, 0) + len(run)
    script = max(by_script, key=by_script.__getitem__)
    sample = " ".join(run for _, run, _ in foreign)
    found = detect(sample)
    language = found.language
    if language is None and len(SCRIPT_LANGUAGES.get(script, ())) == 1:
        language = SCRIPT_LANGUAGES[script][0]
    _, first, at = foreign[0]
    return Finding(
        script=found.script or script,
        language=language,
        letters=sum(by_script.values()),
        total=total,
        first=first[:20],
        position=at,
    )


def _latin_language(
    text: str, languages: tuple[str, ...], latin: int, total: int
) -> Finding | None:
    own = {lang for lang in languages if LATIN in language_scripts(lang)}
    own = {lang for lang in own if identify.supported(lang)}
    if word_count(text) < MIN_WORDS or has_own_words(text, languages):
        return None
    probs = identify.probabilities(text, LATIN_LANGUAGES | own)
    if not probs:
        return None
    best = max(probs, key=probs.__getitem__)
    if best in languages or probs[best] < CONFIDENT:
        return None
    if sum(probs.get(lang, 0.0) for lang in own) >= DOUBT:
        return None
    first = text.strip().split()[0]
    return Finding(LATIN, best, latin, total, first[:20], text.find(first), probs[best])


def refusal(
    found: Finding, engine: Engine, voice: str, languages: tuple[str, ...]
) -> TextLanguageUnsupported:
    """The error for ``found``: what the text is, what the voice speaks, who could speak it."""
    name = language_name(found.language) if found.language else None
    alternatives = _speakers(engine, found, exclude=voice)
    if found.script == LATIN:
        what = f"the text is {name} (identified with probability {found.probability:.2f})"
    elif found.letters * 2 >= found.total:
        what = f"the text is {_named(found)}"
    else:
        what = (
            f"the text has {found.letters} letter(s) in {_named(found)} among its "
            f"{found.total} letters, the first {found.first!r} at character {found.position}"
        )
    said = f"voice {voice!r} speaks {describe(languages)} only"
    message = f"{what}; {said}. {_who_speaks(engine, found, alternatives)}"
    if found.script != LATIN and found.letters * 2 < found.total:
        message += " To keep such a name, write it in Latin letters (for Chinese: pinyin)."
    return TextLanguageUnsupported(
        message,
        language=found.language,
        script=found.script,
        voice=voice,
        voice_languages=list(languages),
        alternatives=alternatives,
        position=found.position,
    )


def _named(found: Finding) -> str:
    if found.language is not None:
        return f"{language_name(found.language)} ({found.script} script)"
    guesses = SCRIPT_LANGUAGES.get(found.script, ())
    if guesses:
        return f"{found.script} script ({', '.join(language_name(g) for g in guesses)}...)"
    return f"{found.script} script"


def _speakers(engine: Engine, found: Finding, exclude: str) -> list[str]:
    """The engine's voices that could speak what was found."""
    speakers = []
    for voice in engine.voices():
        if voice == exclude:
            continue
        languages = engine.voice_languages(voice)
        if ANY_LANGUAGE in languages:
            speakers.append(voice)
        elif found.language is not None:
            if found.language in languages:
                speakers.append(voice)
        elif any(found.script in language_scripts(lang) for lang in languages):
            speakers.append(voice)
    return speakers


def _who_speaks(engine: Engine, found: Finding, alternatives: list[str]) -> str:
    name = language_name(found.language) if found.language else f"{found.script} script"
    if alternatives:
        return f"Voices of this service that speak {name}: {', '.join(alternatives)}."
    text = f"No voice of this service speaks {name}"
    if engine.name != "cosyvoice" and found.language is not None:
        from steadyvoice.engines.cosyvoice.languages import (
            COSYVOICE2_LANGUAGES,
            COSYVOICE3_LANGUAGES,
        )

        if found.language in COSYVOICE2_LANGUAGES:
            text += f"; the cosyvoice engine speaks {name} (see {COSYVOICE_DOCS})"
        elif found.language in COSYVOICE3_LANGUAGES:
            text += (
                f"; the cosyvoice engine with Fun-CosyVoice3 speaks {name} (see {COSYVOICE_DOCS})"
            )
    if engine.name == "piper":
        text += f"; or add a Piper voice in {name} (piper.voices, see docs/text.md)"
    return text + "."
