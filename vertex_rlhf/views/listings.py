"""Plain-text listings: the runs of a pipeline (``rlhf runs``), its published versions
(``rlhf versions``). Every cell came from a server: each is shown through ``views.text``."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from vertex_rlhf.views.text import name

if TYPE_CHECKING:
    from vertex_rlhf.cloud.registry import RegistryVersion
    from vertex_rlhf.cloud.status import RunRow

# The widths of the columns; a longer cell pushes the rest of its line right.
RUN_COLUMNS = (("JOB ID", 52), ("STATE", 10), ("VERSION", 10), ("ENV", 8), ("CREATED", 0))
VERSION_COLUMNS = (("DIGEST", 73), ("TAGS", 24), ("CREATED", 0))


def _line(cells: Iterable[str], columns: Sequence[tuple[str, int]]) -> str:
    parts = [f"{cell:<{width}}" for cell, (_, width) in zip(cells, columns, strict=True)]
    return " ".join(parts).rstrip()


def runs_table(runs: Sequence[RunRow], empty: str) -> str:
    """The runs, one a line under a header.

    Args:
        runs: ``list_runs`` rows.
        empty: the line shown when there are none (our own words, shown as they are).
    """
    lines = [_line((title for title, _ in RUN_COLUMNS), RUN_COLUMNS)]
    for run in runs:
        cells = (run.job_id, run.state, run.version, run.environment, run.created)
        lines.append(_line((name(cell) for cell in cells), RUN_COLUMNS))
    if not runs:
        lines.append(empty)
    return "\n".join(lines)


def versions_table(versions: Sequence[RegistryVersion], empty: str) -> str:
    """The published versions of a template, one a line under a header.

    Args:
        versions: what the registry listed.
        empty: the line shown when there are none.
    """
    lines = [_line((title for title, _ in VERSION_COLUMNS), VERSION_COLUMNS)]
    for version in versions:
        tags = ",".join(name(tag) for tag in version.tags) or "-"
        cells = (name(version.digest), name(tags, 1000), name(version.created))
        lines.append(_line(cells, VERSION_COLUMNS))
    if not versions:
        lines.append(empty)
    return "\n".join(lines)
