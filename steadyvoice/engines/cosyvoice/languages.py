"""What the CosyVoice models speak: their languages, and the dialects reachable through instruct.

From upstream's README (see /shared/reference/cosyvoice-upstream.md, section 4): CosyVoice2 speaks
Chinese, English, Japanese, Korean and Cantonese; Fun-CosyVoice3 adds German, Spanish, French,
Italian and Russian. The dialects are the instruction keys of :mod:`.prompts` (upstream's
``instruct_list``): a voice profile plus ``instructions: "<key>"`` speaks Chinese text in them.
"""

from __future__ import annotations

from dataclasses import dataclass

COSYVOICE2_LANGUAGES = ("zh", "en", "ja", "ko", "yue")
COSYVOICE3_LANGUAGES = (*COSYVOICE2_LANGUAGES, "de", "es", "fr", "it", "ru")


@dataclass(frozen=True)
class Dialect:
    """A dialect the instruct mode asks for: the language its text is written in, and its name."""

    language: str
    name: str


# Instruction key → dialect. Every key here is an instruction key of ``prompts.INSTRUCTIONS``.
DIALECTS: dict[str, Dialect] = {
    "cantonese": Dialect("yue", "Cantonese"),
    "northeastern": Dialect("zh", "Northeastern Mandarin"),
    "gansu": Dialect("zh", "Gansu"),
    "guizhou": Dialect("zh", "Guizhou"),
    "henan": Dialect("zh", "Henan"),
    "hubei": Dialect("zh", "Hubei"),
    "hunan": Dialect("zh", "Hunan"),
    "jiangxi": Dialect("zh", "Jiangxi"),
    "minnan": Dialect("zh", "Minnan (Southern Min)"),
    "ningxia": Dialect("zh", "Ningxia"),
    "shanxi": Dialect("zh", "Shanxi"),
    "shaanxi": Dialect("zh", "Shaanxi"),
    "shandong": Dialect("zh", "Shandong"),
    "shanghainese": Dialect("zh", "Shanghainese (Wu)"),
    "sichuanese": Dialect("zh", "Sichuanese"),
    "tianjin": Dialect("zh", "Tianjin"),
    "yunnan": Dialect("zh", "Yunnan"),
}


def model_languages(generation: int) -> tuple[str, ...]:
    """The languages of a CosyVoice model of ``generation`` (2 or 3), Chinese first."""
    return COSYVOICE3_LANGUAGES if generation >= 3 else COSYVOICE2_LANGUAGES
