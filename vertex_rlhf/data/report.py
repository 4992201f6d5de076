"""``rlhf validate-data``: validate and profile datasets, and say what steps they give.

The report people read is drawn by ``views.datasets``."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from vertex_rlhf.data import files
from vertex_rlhf.data.profile import Profile, SeenFilter
from vertex_rlhf.data.progress import ProgressSink
from vertex_rlhf.data.rules import (
    add_problem,
    check_lines,
    check_model_layout,
    new_dataset_report,
)
from vertex_rlhf.steps import calculate_training_steps

if TYPE_CHECKING:  # the config wing costs ~40 ms to import: validating one path needs none
    from vertex_rlhf.config.params import RLHFParams


def model_layout(model: str) -> str:
    """The layout a model reads: ``"chat"`` (messages) or ``"text"`` (input_text).

    Args:
        model: a ``large_model_reference``.

    Returns:
        The layout, or ``""`` for a model the catalog does not know.
    """
    from vertex_rlhf.config import catalog

    found = catalog.MODELS.get(catalog.canonical_model_name(model))
    return "" if found is None else ("chat" if found.chat else "text")


def _datasets(params: RLHFParams) -> list[tuple[str, str]]:
    d = params.dataset
    named = [("preference", d.preference_dataset), ("prompt", d.prompt_dataset)]
    return named + ([("eval", d.eval_dataset)] if d.eval_dataset else [])


def check_layouts_agree(reports: dict[str, dict[str, Any]]) -> None:
    """Adds a problem to each dataset whose layout differs from the preference set's.

    GCPC reads every dataset of a run with one model, so they share one layout.

    Args:
        reports: kind -> finished report, in the order preference, prompt, eval.
    """
    first = next((r for r in reports.values() if r["layout"]), None)
    if first is None:
        return
    layout = first["layout"].split(" ")[-1]
    for report in reports.values():
        got = report["layout"].split(" ")[-1]
        if got and got != layout:
            add_problem(
                report,
                report["dataset"],
                f"rows are {got} but the {first['kind']} dataset's are {layout}; a run reads"
                " every dataset with one model, so they need one layout",
            )


def layout_problems(params: RLHFParams, peek_lines: int = 100) -> list[str]:
    """Layout against the model and across datasets, from the first rows of local datasets.

    ``gs://`` datasets are left to ``validate-data`` and to the pipeline, which checks
    them before anything is booked; this keeps ``check`` offline.

    Args:
        params: the resolved parameters.
        peek_lines: lines read from the first file of each local dataset.

    Returns:
        The problems, ``"dataset: problem"`` each; empty when the layouts fit.
    """
    model = params.training.large_model_reference
    expected = model_layout(model)
    reports = {}
    for kind, path in _datasets(params):
        if path.startswith("gs://"):
            continue
        report = new_dataset_report(path, kind, max_reported=1)
        found = files.sources(path)
        if found:
            with files.lines_of(found[0]) as lines:
                check_lines(report, found[0].name, itertools.islice(lines, peek_lines))
        report["errors"], report["problems"] = 0, []  # row problems are validate-data's
        check_model_layout(report, model, expected)
        reports[kind] = report
    if not expected:
        check_layouts_agree(reports)
    return [problem for report in reports.values() for problem in report["problems"]]


def check_dataset(
    path: str,
    kind: str,
    prompt_limit: int = 512,
    target_limit: int = 64,
    max_reported: int = 5,
    training: tuple[SeenFilter, ...] = (),
    progress: ProgressSink | None = None,
    model: str = "",
    profile: bool = True,
) -> tuple[dict[str, Any], Profile | None]:
    """Validates and profiles one dataset; files are read concurrently into one profile.

    Args:
        path: a local or gs:// path or glob.
        kind: preference, prompt or eval.
        prompt_limit: prompt_sequence_length, for the truncation estimate.
        target_limit: target_sequence_length, for the truncation estimate.
        max_reported: problems to keep word for word.
        training: prompt filters of the training data, to count eval overlap.
        progress: told the bytes and rows read (a bar on a terminal).
        model: the ``large_model_reference``: rows must have its layout (text or chat).
        profile: whether to profile the rows (False: validation only, faster).

    Returns:
        The validation report and the profile (None without one).
    """
    found = Profile(prompt_limit, target_limit, training) if profile else None
    observe = (lambda _: found) if found is not None else None
    report = files.validate(path, kind, max_reported, observe=observe, progress=progress)
    if model:
        check_model_layout(report, model, model_layout(model))
    return report, found


def check_environment(
    params: RLHFParams,
    max_reported: int = 5,
    progress: ProgressSink | None = None,
    profile: bool = True,
) -> dict[str, Any]:
    """Validates and profiles the preference, prompt and eval datasets of an environment.

    ``progress`` is told each dataset's size and the bytes and rows read; without
    ``profile`` the datasets are only validated (no profile, no eval overlap).

    Returns:
        ``datasets`` (kind -> report and profile), ``eval_overlap`` (eval prompts also
        in training), ``steps`` (when the training data is valid) and ``valid``.
    """
    from vertex_rlhf.config.guidance import run_warnings

    d, t = params.dataset, params.training
    limits = (t.prompt_sequence_length, t.target_sequence_length)
    model = t.large_model_reference
    checked = {
        kind: check_dataset(
            path,
            kind,
            *limits,
            max_reported=max_reported,
            progress=progress,
            model=model,
            profile=profile,
        )
        for kind, path in (("preference", d.preference_dataset), ("prompt", d.prompt_dataset))
    }
    if d.eval_dataset:
        training = tuple(p.prompts for _, p in checked.values() if p is not None)
        checked["eval"] = check_dataset(
            d.eval_dataset,
            "eval",
            *limits,
            max_reported=max_reported,
            training=training,
            progress=progress,
            model=model,
            profile=profile,
        )
    if not model_layout(model):
        check_layouts_agree({kind: report for kind, (report, _) in checked.items()})
    result: dict[str, Any] = {
        "datasets": {
            kind: {"report": report, "profile": found.summary() if found else None}
            for kind, (report, found) in checked.items()
        },
        "valid": all(not report["errors"] for report, _ in checked.values()),
    }
    evaluated = checked.get("eval", (None, None))[1]
    if evaluated is not None:
        result["eval_overlap"] = evaluated.eval_overlap
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
