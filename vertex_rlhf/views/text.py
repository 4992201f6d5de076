"""The one renderer for text that came from outside (servers, datasets, event files, names).

Also the one duration format (``duration``): a leaf every wing may use.

Everything such a text holds reaches a terminal, a log or a file only through
:func:`outside` (or :func:`name`, its one-line form for names, labels and table cells):
control characters (C0 but newline and tab, DEL, C1), the bidirectional controls and lone
surrogates (which no stream can encode) are shown as backslash escapes, and the text is
bounded in length. Markup is never read from it: views that use ``rich`` wrap it in
``rich.text.Text``.
"""

from __future__ import annotations

import re

#: How many characters of one outside text a view shows by default.
DEFAULT_LIMIT = 2000
#: How many characters of a name, label, key or table cell a view shows.
NAME_LIMIT = 200

# C0 but tab and newline, DEL, C1, and the bidirectional marks, embeddings, overrides and
# isolates (U+061C, U+200E-F, U+202A-E, U+2066-9), which can make text read other than it is;
# lone surrogates (a JSON "\ud800", an undecodable byte of a file name), which no stream
# can encode: printing one raises UnicodeEncodeError.
_MARKS = "\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\ud800-\udfff"
_CONTROL = re.compile(f"[\x00-\x08\x0b-\x1f{_MARKS}]")
_CONTROL_OR_LINE = re.compile(f"[\x00-\x1f{_MARKS}]")


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


def name(value: object, limit: int = NAME_LIMIT) -> str:
    """Renders a name from outside (a task, label, key, file name, table cell) on one line.

    Args:
        value: the name (anything else is turned into one with ``str``).
        limit: the most characters shown.

    Returns:
        ``outside(value, limit, one_line=True)``.
    """
    return outside(value, limit, one_line=True)


def duration(seconds: float | None) -> str:
    """``75`` -> ``1m 15s``; ``3700`` -> ``1h 01m``; None -> ``-``."""
    if seconds is None:
        return "-"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


# The most characters of one error screen (a server's error can be megabytes).
ERROR_LIMIT = 10_000
# The most characters of a path printed back (a user's path can be long, never a screen).
PATH_LIMIT = 1000


def path(value: object) -> str:
    """A path the user gave (or one made from it), as a success line prints it: one line,
    control characters escaped, like every other text from outside."""
    return name(value, PATH_LIMIT)
