"""The validate-data report: per dataset its verdict, files and profile; then the steps.

File names, quoted keys and values and the problems that quote them come from the files:
each passes ``views.text`` before ``report_summary`` (the shipped validator's own summary,
which prints what it is given) lays them out.
"""

from __future__ import annotations

import sys
from typing import Any

from vertex_rlhf.data.report import DatasetCheck, EnvironmentCheck
from vertex_rlhf.data.rules import printable, report_summary
from vertex_rlhf.views.text import name as outside_name
from vertex_rlhf.views.text import outside


def _lengths(name: str, summary: dict[str, Any], truncated: dict[str, Any]) -> str:
    return (
        f"  {name} length (chars): mean {summary['mean_chars']}, p50 <= "
        f"{summary['p50_chars_at_most']}, p90 <= {summary['p90_chars_at_most']}, p99 <= "
        f"{summary['p99_chars_at_most']}, max {summary['max_chars']};"
        f" likely truncated: {truncated['rows']} ({truncated['share']:.1%})"
    )


def _shown(check: DatasetCheck) -> dict[str, Any]:
    """The shipped validator's report with what came from the files (names, quoted keys
    and values) escaped and bounded, for ``report_summary`` (shipped code, which prints
    what it is given)."""
    return {
        **check.report(),
        "dataset": outside_name(check.path, 1000),
        "layout": outside_name(check.layout),
        "files": [[outside_name(name, 1000), rows] for name, rows in check.files],
        "problems": [outside_name(problem, 2000) for problem in check.problems],
    }


def render(result: EnvironmentCheck) -> str:
    """The human report: per dataset its verdict, files and profile; then steps."""
    lines = []
    for check in result.datasets.values():
        profile = check.profile
        lines.append(report_summary(_shown(check), max_files=10))
        if profile is None:
            continue
        lines.append(
            f"  duplicate prompts: {profile['duplicate_prompts']}; empty or whitespace-only"
            f" texts: {profile['empty_texts']}"
        )
        lines.append(
            _lengths("prompt", profile["prompt_length"], profile["prompts_likely_truncated"])
        )
        if "choice_balance" in profile:
            balance = ", ".join(
                f"{outside_name(k)}: {v}" for k, v in profile["choice_balance"].items()
            )
            lines.append(
                f"  duplicate pairs: {profile['duplicate_pairs']}; choice balance: {balance};"
                f" identical candidates: {profile['identical_candidates']}"
            )
            lines.append(
                _lengths(
                    "candidate", profile["candidate_length"], profile["candidates_likely_truncated"]
                )
            )
    if result.eval_overlap is not None:
        lines.append(f"eval prompts also in the training data: {result.eval_overlap}")
    if result.steps is not None:
        lines.append(result.steps.text)
        lines += [f"warning: {outside(w)}" for w in result.steps.warnings]
    first = next(iter(result.datasets.values())).profile
    if first is not None:
        lines.append(f"note: truncation is an estimate ({first['truncation_estimate']})")
    # File names may hold what the terminal cannot encode: escape rather than crash.
    return printable("\n".join(lines), getattr(sys.stdout, "encoding", None))
