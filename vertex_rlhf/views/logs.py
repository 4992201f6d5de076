"""Log lines: every record the CLI's log handler writes passes ``views.text.outside``.

Library and SDK records quote servers and files (a storage error, an object name); the
formatter escapes their control characters and bounds each record like any other line.
"""

from __future__ import annotations

import logging

from vertex_rlhf.views.text import outside

#: The most characters of one log record (message and traceback together).
RECORD_LIMIT = 20_000


class EscapingFormatter(logging.Formatter):
    """A ``logging.Formatter`` whose records come out escaped and bounded.

    Args:
        fmt: the record format, as for ``logging.Formatter``.
        limit: the most characters of one formatted record.
    """

    def __init__(self, fmt: str | None = None, limit: int = RECORD_LIMIT) -> None:
        super().__init__(fmt)
        self.limit = limit

    def format(self, record: logging.LogRecord) -> str:
        return outside(super().format(record), self.limit)
