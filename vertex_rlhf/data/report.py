"""``rlhf validate-data``: validate and profile datasets, and say what steps they give.

The shipped validator (``rules.py``, carried into the pipeline template) reports in a
dict; at this boundary it becomes a ``DatasetCheck`` record, and an environment's checks
an ``EnvironmentCheck``. Their ``as_dict`` is ``validate-data --json``'s output. The
report people read is drawn by ``views.datasets``."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from vertex_rlhf.data import files
from vertex_rlhf.data.profile import Profile, SeenFilter
from vertex_rlhf.data.progress import ProgressSink
from vertex_rlhf.data.rules import (
    add_problem,
    check_lines,
    check_model_layout,
    new_dataset_report,
    report_summary,
    validate_dataset_files,
)
from vertex_rlhf.steps import calculate_training_steps

if TYPE_CHECKING:  # the config wing costs ~40 ms to import: validating one path needs none
    from vertex_rlhf.config.params import RLHFParams


# The keys of the shipped validator's report, in its order (``rules.new_dataset_report``).
REPORT_KEYS = (
    "dataset",
    "kind",
    "files",
    "rows",
    "blank_lines",
    "layout",
    "errors",
    "problems",
    "max_reported",
)


@dataclass(frozen=True)
class DatasetCheck:
    """One dataset's verdict, from the shipped validator's report, and its profile.

    Attributes:
        path: the dataset as given (a file, glob or ``gs://`` path).
        kind: ``preference``, ``prompt`` or ``eval``.
        files: each file read, with its rows, in the order they are merged.
        rows: rows in all the files.
        blank_lines: blank lines skipped.
        layout: the rows' layout (``text``, ``chat``, ``preference text``, ...); empty
            when no row was read.
        errors: problems found.
        problems: the first ``max_reported`` problems, word for word (as in the files).
        max_reported: how many problems are kept word for word.
        profile: the profile (``Profile.summary``: plain data), or None without one.
    """

    path: str
    kind: str
    files: tuple[tuple[str, int], ...]
    rows: int
    blank_lines: int
    layout: str
    errors: int
    problems: tuple[str, ...]
    max_reported: int
    profile: dict[str, Any] | None = None

    @property
    def valid(self) -> bool:
        return not self.errors

    @classmethod
    def from_report(
        cls, report: Mapping[str, Any], profile: dict[str, Any] | None = None
    ) -> DatasetCheck:
        """The record of the shipped validator's report (``rules.py``'s dict)."""
        return cls(
            path=report["dataset"],
            kind=report["kind"],
            files=tuple((name, rows) for name, rows in report["files"]),
            rows=report["rows"],
            blank_lines=report["blank_lines"],
            layout=report["layout"],
            errors=report["errors"],
            problems=tuple(report["problems"]),
            max_reported=report["max_reported"],
            profile=profile,
        )

    def report(self) -> dict[str, Any]:
        """The shipped validator's report again, key for key (for ``rules.report_summary``
        and ``--json``)."""
        return {
            "dataset": self.path,
            "kind": self.kind,
            "files": [[name, rows] for name, rows in self.files],
            "rows": self.rows,
            "blank_lines": self.blank_lines,
            "layout": self.layout,
            "errors": self.errors,
            "problems": list(self.problems),
            "max_reported": self.max_reported,
        }

    def as_dict(self) -> dict[str, Any]:
        """``report`` and ``profile``, as ``validate-data --json`` gives each dataset."""
        return {"report": self.report(), "profile": self.profile}


@dataclass(frozen=True)
class StepsCheck:
    """The training steps the valid training data gives.

    Attributes:
        reward_model_steps, reinforcement_learning_steps: the steps (explicit ones win).
        warnings: the guidance warnings of steps, check and submit (config/guidance.py).
        text: the steps as ``make steps`` prints them.
    """

    reward_model_steps: int
    reinforcement_learning_steps: int
    warnings: tuple[str, ...]
    text: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "reward_model_steps": self.reward_model_steps,
            "reinforcement_learning_steps": self.reinforcement_learning_steps,
            "warnings": list(self.warnings),
            "text": self.text,
        }


@dataclass(frozen=True)
class EnvironmentCheck:
    """The checks of an environment's datasets (or of one ``--path``: one dataset).

    Attributes:
        datasets: kind -> its check, in the order preference, prompt, eval.
        eval_overlap: eval prompts also in the training data (None: not counted).
        steps: the training steps (None: the training data is invalid, or one path).
    """

    datasets: dict[str, DatasetCheck] = field(default_factory=dict)
    eval_overlap: int | None = None
    steps: StepsCheck | None = None

    @property
    def valid(self) -> bool:
        return all(check.valid for check in self.datasets.values())

    def as_dict(self) -> dict[str, Any]:
        """``validate-data --json``'s output: ``datasets``, ``valid``, then
        ``eval_overlap`` and ``steps`` when known."""
        found: dict[str, Any] = {
            "datasets": {kind: check.as_dict() for kind, check in self.datasets.items()},
            "valid": self.valid,
        }
        if self.eval_overlap is not None:
            found["eval_overlap"] = self.eval_overlap
        if self.steps is not None:
            found["steps"] = self.steps.as_dict()
        return found


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


def count_rows(path: str, kind: str, model: str = "") -> int:
    """The rows of a local dataset, every one validated (against ``model``'s layout when
    given), as ``steps``, ``check`` and ``plan`` count them.

    Raises:
        DataError: invalid rows, listed.
    """
    from vertex_rlhf.errors import DataError

    report = validate_dataset_files(path, kind, 5, model, model_layout(model))
    if report["errors"]:
        raise DataError(
            report_summary(report), hint="correct or remove the rows above, then run again"
        )
    return int(report["rows"])


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
) -> DatasetCheck:
    """Validates and profiles one dataset; files are read concurrently into one profile.

    Arguments as ``_check``'s.
    """
    report, found = _check(
        path, kind, prompt_limit, target_limit, max_reported, training, progress, model, profile
    )
    return DatasetCheck.from_report(report, found.summary() if found else None)


def _check(
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
    """Validates and profiles one dataset: the shipped validator's report and the profile.

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
) -> EnvironmentCheck:
    """Validates and profiles the preference, prompt and eval datasets of an environment.

    ``progress`` is told each dataset's size and the bytes and rows read; without
    ``profile`` the datasets are only validated (no profile, no eval overlap).

    Returns:
        The checks of the datasets, the eval overlap (eval prompts also in training) and
        the steps (when the training data is valid).
    """
    from vertex_rlhf.config.guidance import run_warnings

    d, t = params.dataset, params.training
    limits = (t.prompt_sequence_length, t.target_sequence_length)
    model = t.large_model_reference
    checked = {
        kind: _check(
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
        checked["eval"] = _check(
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
    datasets = {
        kind: DatasetCheck.from_report(report, found.summary() if found else None)
        for kind, (report, found) in checked.items()
    }
    evaluated = checked.get("eval", (None, None))[1]
    overlap = evaluated.eval_overlap if evaluated is not None else None
    preference, prompts = datasets["preference"], datasets["prompt"]
    if not preference.valid or not prompts.valid:
        return EnvironmentCheck(datasets, overlap)
    steps, _ = calculate_training_steps(
        preference.rows,
        prompts.rows,
        t.reward_model_epochs,
        t.reinforcement_learning_epochs,
        t.reward_model_train_steps or 0,
        t.reinforcement_learning_train_steps or 0,
    )
    found = StepsCheck(
        reward_model_steps=steps.reward_model_steps,
        reinforcement_learning_steps=steps.reinforcement_learning_steps,
        # The same warnings as steps, check and submit give (config/guidance.py).
        warnings=tuple(run_warnings(params, preference.rows, prompts.rows)),
        text=f"Optimal training steps: {steps}",
    )
    return EnvironmentCheck(datasets, overlap, found)
