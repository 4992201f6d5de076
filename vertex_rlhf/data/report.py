"""``rlhf validate-data``: validate and profile datasets, and say what steps they give."""

from __future__ import annotations

import threading
from typing import Any

from vertex_rlhf.config.guidance import run_warnings
from vertex_rlhf.config.params import RLHFParams
from vertex_rlhf.data import files
from vertex_rlhf.data.profile import Profile, SeenFilter
from vertex_rlhf.data.progress import ProgressSink
from vertex_rlhf.data.rules import report_summary
from vertex_rlhf.steps import calculate_training_steps


def check_dataset(
    path: str,
    kind: str,
    prompt_limit: int = 512,
    target_limit: int = 64,
    max_reported: int = 5,
    training: tuple[SeenFilter, ...] = (),
    progress: ProgressSink | None = None,
) -> tuple[dict[str, Any], Profile]:
    """Validates and profiles one dataset; files are read concurrently into one profile.

    Args:
        path: a local or gs:// path or glob.
        kind: preference, prompt or eval.
        prompt_limit: prompt_sequence_length, for the truncation estimate.
        target_limit: target_sequence_length, for the truncation estimate.
        max_reported: problems to keep word for word.
        training: prompt filters of the training data, to count eval overlap.
        progress: told the bytes and rows read (a bar on a terminal).

    Returns:
        The validation report and the profile.
    """
    profile = Profile(prompt_limit, target_limit, training)
    lock = threading.Lock()

    def observe(row: dict[str, Any]) -> None:
        with lock:
            profile.observe(row)

    report = files.validate(path, kind, max_reported, observe=lambda _: observe, progress=progress)
    return report, profile


def check_environment(
    params: RLHFParams, max_reported: int = 5, progress: ProgressSink | None = None
) -> dict[str, Any]:
    """Validates and profiles the preference, prompt and eval datasets of an environment.

    ``progress`` is told each dataset's size and the bytes and rows read.

    Returns:
        ``datasets`` (kind -> report and profile), ``eval_overlap`` (eval prompts also
        in training), ``steps`` (when the training data is valid) and ``valid``.
    """
    d, t = params.dataset, params.training
    limits = (t.prompt_sequence_length, t.target_sequence_length)
    checked = {
        kind: check_dataset(path, kind, *limits, max_reported=max_reported, progress=progress)
        for kind, path in (("preference", d.preference_dataset), ("prompt", d.prompt_dataset))
    }
    if d.eval_dataset:
        training = (checked["preference"][1].prompts, checked["prompt"][1].prompts)
        checked["eval"] = check_dataset(
            d.eval_dataset,
            "eval",
            *limits,
            max_reported=max_reported,
            training=training,
            progress=progress,
        )
    result: dict[str, Any] = {
        "datasets": {
            kind: {"report": report, "profile": profile.summary()}
            for kind, (report, profile) in checked.items()
        },
        "valid": all(not report["errors"] for report, _ in checked.values()),
    }
    if "eval" in checked:
        result["eval_overlap"] = checked["eval"][1].eval_overlap
    (preference, _), (prompts, _) = checked["preference"], checked["prompt"]
    if not preference["errors"] and not prompts["errors"]:
        steps, _ = calculate_training_steps(
            preference["rows"],
            prompts["rows"],
            t.reward_model_epochs,
            t.reinforcement_learning_epochs,
            t.reward_model_train_steps or 0,
            t.reinforcement_learning_train_steps or 0,
        )
        result["steps"] = {
            "reward_model_steps": steps.reward_model_steps,
            "reinforcement_learning_steps": steps.reinforcement_learning_steps,
            # The same warnings as steps, check and submit give (config/guidance.py).
            "warnings": run_warnings(params, preference["rows"], prompts["rows"]),
            "text": f"Optimal training steps: {steps}",
        }
    return result


def _lengths(name: str, summary: dict[str, Any], truncated: dict[str, Any]) -> str:
    return (
        f"  {name} length (chars): mean {summary['mean_chars']}, p50 <= "
        f"{summary['p50_chars_at_most']}, p90 <= {summary['p90_chars_at_most']}, p99 <= "
        f"{summary['p99_chars_at_most']}, max {summary['max_chars']};"
        f" likely truncated: {truncated['rows']} ({truncated['share']:.1%})"
    )


def render(result: dict[str, Any]) -> str:
    """The human report: per dataset its verdict, files and profile; then steps."""
    lines = []
    for entry in result["datasets"].values():
        report, profile = entry["report"], entry["profile"]
        lines.append(report_summary(report))
        for name, rows in report["files"][:10]:
            lines.append(f"  file {name}: {rows} rows")
        if len(report["files"]) > 10:
            lines.append(f"  ... and {len(report['files']) - 10} more files")
        lines.append(
            f"  duplicate prompts: {profile['duplicate_prompts']}; empty or whitespace-only"
            f" texts: {profile['empty_texts']}"
        )
        lines.append(
            _lengths("prompt", profile["prompt_length"], profile["prompts_likely_truncated"])
        )
        if "choice_balance" in profile:
            balance = ", ".join(f"{k}: {v}" for k, v in profile["choice_balance"].items())
            lines.append(
                f"  duplicate pairs: {profile['duplicate_pairs']}; choice balance: {balance};"
                f" identical candidates: {profile['identical_candidates']}"
            )
            lines.append(
                _lengths(
                    "candidate", profile["candidate_length"], profile["candidates_likely_truncated"]
                )
            )
    if "eval_overlap" in result:
        lines.append(f"eval prompts also in the training data: {result['eval_overlap']}")
    if "steps" in result:
        lines.append(result["steps"]["text"])
        lines += [f"warning: {w}" for w in result["steps"]["warnings"]]
    first = next(iter(result["datasets"].values()))["profile"]
    lines.append(f"note: truncation is an estimate ({first['truncation_estimate']})")
    return "\n".join(lines)
