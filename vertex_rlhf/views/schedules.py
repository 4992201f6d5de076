"""Schedules as people read them: the listing (``rlhf schedules``) and what a command did.

Every cell came from a server (names, crons, states, versions, digests, times, job ids):
each is shown through ``views.text`` (escaped, bounded, one line).
"""

from __future__ import annotations

from typing import Any

from vertex_rlhf.usecases.schedules import Changed, Scheduled, ScheduleList
from vertex_rlhf.views.text import name

# The widths of the columns; a longer cell pushes the rest of its line right.
COLUMNS = (
    ("NAME", 16),
    ("STATE", 9),
    ("CRON", 34),
    ("VERSION", 12),
    ("DIGEST", 71),
    ("NEXT RUN", 24),
    ("LAST RUN", 0),
)
CRON_LIMIT = 120


def _line(cells: list[str]) -> str:
    parts = [f"{cell:<{width}}" for cell, (_, width) in zip(cells, COLUMNS, strict=True)]
    return " ".join(parts).rstrip()


def schedules_table(listing: ScheduleList) -> str:
    """The schedules of an environment, one a line under a header."""
    lines = [_line([title for title, _ in COLUMNS])]
    for row in listing.rows:
        last = "-"
        if row.last_run or row.last_job:
            last = " ".join(
                part
                for part in (
                    name(row.last_run or "?"),
                    name(row.last_run_state or "?"),
                    f"({name(row.last_job)})" if row.last_job else "",
                )
                if part
            )
        cells = [
            name(row.name),
            name(row.state),
            name(row.cron, CRON_LIMIT),
            name(row.version),
            name(row.digest or "(not pinned)"),
            name(row.next_run or "-"),
            last,
        ]
        lines.append(_line(cells))
    if not listing.rows:
        lines.append(f"(no schedules of environment {name(listing.env)} in {name(listing.parent)})")
    return "\n".join(lines)


def schedules_json(listing: ScheduleList) -> dict[str, Any]:
    """The listing for machines (``--json``: JSON escapes what it holds)."""
    return {
        "environment": listing.env,
        "parent": listing.parent,
        "schedules": [
            {
                "name": row.name,
                "resource": row.resource,
                "cron": row.cron,
                "state": row.state,
                "version": row.version,
                "digest": row.digest,
                "next_run": row.next_run,
                "last_run": row.last_run,
                "last_run_state": row.last_run_state,
                "last_job": row.last_job,
            }
            for row in listing.rows
        ],
    }


def scheduled_lines(result: Scheduled, env: str) -> str:
    """What ``rlhf schedule`` created or updated."""
    s, t = result.schedule, result.template
    return "\n".join(
        [
            f"Schedule {name(result.display_name)} {result.action}: {name(s.resource, 1000)}",
            f"  cron:     {name(s.cron, CRON_LIMIT)} (state {name(s.state)};"
            f" at most {s.max_concurrent} run at a time)",
            f"  template: {name(t.name)} {name(t.version)} pinned to {name(t.digest)}",
            f"            {name(t.uri or '', 1000)}",
            f"  next run: {name(s.next_run or '-')}",
            f"  list them with: make schedules ENV={name(env)}",
        ]
    )


def changed_line(changed: Changed) -> str:
    """What a pause, resume or delete did."""
    lines = [f"Schedule {name(changed.name)} {changed.verb}: {name(r, 1000)}" for r in changed.done]
    lines += [
        f"Schedule {name(changed.name)} was already {changed.verb}: {name(r, 1000)}"
        for r in changed.unchanged
    ]
    return "\n".join(lines)
