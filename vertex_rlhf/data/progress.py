"""Progress of long dataset reads (bytes and rows), told to an optional sink.

The data wing only counts; how progress is shown (a bar on a terminal, nothing in a
log) is the faces' business (``vertex_rlhf/views/live.py``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

# Report at most once per this many bytes read, so counting costs next to nothing.
REPORT_EVERY = 1 << 20


class ProgressSink(Protocol):
    """Receives progress; must be thread-safe (files are read concurrently)."""

    def start(self, label: str, total_bytes: int) -> None:
        """A dataset of ``total_bytes`` (the sum of its files' sizes) starts being read."""

    def advance(self, nbytes: int, rows: int) -> None:
        """``nbytes`` more bytes and ``rows`` more non-blank lines were read."""


def counted(
    lines: Iterable[bytes],
    sink: ProgressSink | None,
    size: int | None = None,
    every: int = REPORT_EVERY,
) -> Iterator[bytes]:
    """Passes ``lines`` through, telling ``sink`` the bytes and rows read as it goes.

    Args:
        lines: raw lines of one file, with or without their ``\\n``.
        sink: where progress goes; None passes the lines through untouched.
        size: the file's size in bytes, to make the final count exact.
        every: tell the sink at most once per this many bytes.

    Returns:
        The same lines.
    """
    if sink is None:
        return iter(lines)  # no wrapper, no cost
    return _counting(lines, sink, size, every)


def _counting(
    lines: Iterable[bytes], sink: ProgressSink, size: int | None, every: int
) -> Iterator[bytes]:
    total = pending = rows = 0
    for line in lines:
        length = len(line)
        pending += length
        if length > 2 or line.strip():  # cheap test first: most rows are long
            rows += 1
        if pending >= every:
            sink.advance(pending, rows)
            total += pending
            pending = rows = 0
        yield line
    total += pending
    # Lines split from blocks lack their newline: settle on the file's real size.
    sink.advance(pending + (size - total if size is not None else 0), rows)
