"""Rules every piece of client text obeys, whatever the route: no control characters."""

from __future__ import annotations

import re

from steadyvoice.errors import TextInvalid

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
