"""The one renderer for text that came from outside (servers, datasets, event files, names).

Everything such a text holds reaches a terminal, a log or a file only through
:func:`outside`: control characters (C0 but newline and tab, DEL, C1) and the
bidirectional controls are shown as backslash escapes, and the text is bounded in length.
Markup is never read from it: views that use ``rich`` wrap it in ``rich.text.Text``.
"""

from __future__ import annotations

import re

#: How many characters of one outside text a view shows by default.
DEFAULT_LIMIT = 2000

# C0 but tab and newline, DEL, C1, and the bidirectional marks, embeddings, overrides and
# isolates (U+061C, U+200E-F, U+202A-E, U+2066-9), which can make text read other than it is.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_OR_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def outside(value: object, limit: int = DEFAULT_LIMIT, *, one_line: bool = False) -> str:
    """Renders a text from outside so that printing it can do no harm.

    Args:
        value: the text (anything else is turned into one with ``str``).
        limit: the most characters shown; a longer text is cut and says how much was cut.
        one_line: escape newlines and tabs too (names, labels, table cells).

    Returns:
        The text with control characters escaped, at most about ``limit`` characters long.
    """
    text = value if isinstance(value, str) else str(value)
    cut = len(text) - limit if len(text) > limit else 0
    if cut:
        text = text[:limit]
    text = (_CONTROL_OR_LINE if one_line else _CONTROL).sub(_escaped, text)
    if len(text) > limit:  # escapes made it longer
        cut += 1
        text = text[:limit]
    return f"{text}… [{cut:,} more characters]" if cut else text
