"""Language codes and names: the lower-case primary codes voices declare (``en``, ``zh``...)."""

from __future__ import annotations

import re

from steadyvoice.engines.base import ANY_LANGUAGE

# espeak-ng and ISO 639-3 codes, and Norwegian's two written forms, that name a language with
# another code here (Piper's Norwegian voices say ``no``, as py3langid does).
_ALIASES = {
    "nb": "no",
    "nn": "no",
    "nob": "no",
    "cmn": "zh",
    "zho": "zh",
    "chi": "zh",
    "eng": "en",
    "deu": "de",
    "ger": "de",
}
_TAG = re.compile(r"[a-z]{2,3}")

NAMES = {
    "am": "Amharic",
    "ar": "Arabic",
    "be": "Belarusian",
    "bg": "Bulgarian",
    "bn": "Bengali",
    "ca": "Catalan",
    "cs": "Czech",
    "cy": "Welsh",
    "da": "Danish",
    "de": "German",
    "el": "Greek",
    "en": "English",
    "es": "Spanish",
    "et": "Estonian",
    "eu": "Basque",
    "fa": "Persian",
    "fi": "Finnish",
    "fr": "French",
    "gu": "Gujarati",
    "he": "Hebrew",
    "hi": "Hindi",
    "hr": "Croatian",
    "hu": "Hungarian",
    "hy": "Armenian",
    "id": "Indonesian",
    "is": "Icelandic",
    "it": "Italian",
    "ja": "Japanese",
    "ka": "Georgian",
    "kk": "Kazakh",
    "km": "Khmer",
    "kn": "Kannada",
    "ko": "Korean",
    "ky": "Kyrgyz",
    "lb": "Luxembourgish",
    "lo": "Lao",
    "lt": "Lithuanian",
    "lv": "Latvian",
    "mk": "Macedonian",
    "ml": "Malayalam",
    "mn": "Mongolian",
    "mr": "Marathi",
    "ms": "Malay",
    "my": "Burmese",
    "ne": "Nepali",
    "nl": "Dutch",
    "no": "Norwegian",
    "pa": "Punjabi",
    "pl": "Polish",
    "ps": "Pashto",
    "pt": "Portuguese",
    "ro": "Romanian",
    "ru": "Russian",
    "sa": "Sanskrit",
    "si": "Sinhala",
    "sk": "Slovak",
    "sl": "Slovenian",
    "sr": "Serbian",
    "sv": "Swedish",
    "sw": "Swahili",
    "ta": "Tamil",
    "te": "Telugu",
    "tg": "Tajik",
    "th": "Thai",
    "tr": "Turkish",
    "ug": "Uyghur",
    "uk": "Ukrainian",
    "ur": "Urdu",
    "vi": "Vietnamese",
    "yi": "Yiddish",
    "yue": "Cantonese",
    "zh": "Chinese",
}


def primary_code(tag: str) -> str | None:
    """``en_US``, ``en-us``, ``EN`` → ``en``; ``cmn`` → ``zh``; None for what is no language tag."""
    head = re.split(r"[-_]", tag.strip().lower(), maxsplit=1)[0]
    if head == ANY_LANGUAGE:
        return ANY_LANGUAGE
    if not _TAG.fullmatch(head):
        return None
    return _ALIASES.get(head, head)


def language_name(code: str) -> str:
    """``zh`` → ``Chinese``; the code itself when it has no name here."""
    if code == ANY_LANGUAGE:
        return "any language"
    return NAMES.get(code, code)


def describe(codes: tuple[str, ...] | list[str]) -> str:
    """``("zh", "en")`` → ``Chinese (zh), English (en)``."""
    return ", ".join(
        language_name(c) if c == ANY_LANGUAGE else f"{language_name(c)} ({c})" for c in codes
    )
