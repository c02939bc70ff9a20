"""Rules every piece of client text obeys, whatever the route and the engine: no control
characters, and something to say."""

from __future__ import annotations

import re

from steadyvoice.errors import TextInvalid, TextUnspeakable

# C0 controls except tab, newline and carriage return; DEL; UTF-16 surrogates (unencodable).
_FORBIDDEN = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def refuse_control_characters(text: str, field: str = "text") -> None:
    """Raise ``text_invalid`` naming the first forbidden character and where it is."""
    bad = _FORBIDDEN.search(text)
    if bad is not None:
        raise TextInvalid(
            f"{field} contains the control character U+{ord(bad.group()):04X}",
            field=field,
            position=bad.start(),
        )


def refuse_unspeakable(text: str, field: str = "text") -> None:
    """Raise ``text_unspeakable`` when ``text`` has no letter and no digit, in any script.

    Punctuation, symbols and spaces alone ("...", "?!", "!!! ...", CJK full stops, dashes,
    emoji) are not speech: one engine would say nothing and fail, another would make a second
    of noise from them. Deciding here, before a job is queued, gives every engine and route
    the same answer.
    """
    if not any(char.isalnum() for char in text):
        raise TextUnspeakable(
            f"{field} has no letters or digits: there is nothing to speak", field=field
        )
