"""What ``rlhf doctor`` prints: a line per check, the fix under each failure."""

from __future__ import annotations

from vertex_rlhf.cloud.health import FAIL, WARN, CheckResult
from vertex_rlhf.views.text import outside

# The most characters printed: the checks quote the servers' answers.
LIMIT = 10_000


def render_health(results: list[CheckResult]) -> str:
    """One line per check, and the fix under each failure; outside text escaped."""
    lines = []
    for r in results:
        code = f" [{r.code}]" if r.status == FAIL and r.code else ""
        lines.append(f"{r.status.upper():<4}  {r.name}: {r.detail}{code}")
        if r.fix and r.status in (FAIL, WARN):
            lines.append(f"      fix: {r.fix}")
    failed = sum(r.status == FAIL for r in results)
    lines.append("healthy" if not failed else f"{failed} check(s) failed")
    return outside("\n".join(lines), LIMIT)
