"""Use cases over an environment's parameters: check, steps, plan, migrate-config."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vertex_rlhf.errors import ConfigError, DataError
from vertex_rlhf.usecases.setting import Setting

if TYPE_CHECKING:
    from vertex_rlhf.original.layout import Migration
    from vertex_rlhf.steps import TrainingSteps
    from vertex_rlhf.template.plan import Plan


@dataclass(frozen=True)
class RowCount:
    """The rows a dataset has, and how they were known.

    Attributes:
        kind: ``preference`` or ``prompt``.
        rows: the count.
        counted: True when every local row was read and validated; False when declared.
        source: the file or glob counted, or the key that declared it.
    """

    kind: str
    rows: int
    counted: bool
    source: str


@dataclass(frozen=True)
class Checked:
    """What ``check`` found: the template the parameters fit and their values."""

    template: Path
    parameter_values: dict[str, Any]
    rows: list[RowCount] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class StepsAnswer:
    """What ``steps`` computed, and from what."""

    steps: TrainingSteps
    reward_model_train_steps: int | None
    reinforcement_learning_train_steps: int | None
    rows: list[RowCount] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


# Told each dataset's row count as soon as it is known (a count can take a while).
RowsSeen = Callable[["RowCount"], None]


def check(setting: Setting, on_rows: RowsSeen | None = None) -> Checked:
    """Checks the parameters against the compiled signature and the model's data layout.

    Raises:
        ConfigError: a value the template does not take. DataError: a dataset of another
            layout, or invalid local rows.
    """
    from vertex_rlhf.data.report import layout_problems
    from vertex_rlhf.template import signature

    params = setting.params
    values = signature.pipeline_parameter_values(params)
    notify = bool(params.vertex_ai.notify_emails)
    template = signature.current_template_path(setting.compiled, notify)
    signature.check_against_signature(values, signature.template_inputs(template), template.name)
    problems = layout_problems(params)
    if problems:
        command = ["rlhf validate-data", *map(shlex.quote, (setting.spec, *setting.overrides))]
        raise DataError(
            "\n".join(problems),
            hint=f"give every dataset the layout of the model (`{' '.join(command)}` lists"
            " every row)",
        )
    rows = dataset_rows(setting, required=False, on_rows=on_rows)
    return Checked(template, values, rows, warnings(setting, rows))


def steps(setting: Setting, on_rows: RowsSeen | None = None) -> StepsAnswer:
    """The training steps a run of these parameters will get.

    Raises:
        ConfigError: a gs:// dataset without its declared size. DataError: invalid rows.
    """
    from vertex_rlhf.steps import calculate_training_steps

    t = setting.params.training
    rows = dataset_rows(setting, required=True, on_rows=on_rows)
    counts = {r.kind: r.rows for r in rows}
    answer, _ = calculate_training_steps(
        counts["preference"],
        counts["prompt"],
        t.reward_model_epochs,
        t.reinforcement_learning_epochs,
        t.reward_model_train_steps or 0,
        t.reinforcement_learning_train_steps or 0,
    )
    return StepsAnswer(
        answer,
        t.reward_model_train_steps,
        t.reinforcement_learning_train_steps,
        rows,
        warnings(setting, rows),
    )


def plan(setting: Setting) -> Plan:
    """What a run of these parameters books: machines, steps, stages, cache, template."""
    from vertex_rlhf.template import plan as planning

    params = setting.params
    return planning.build_plan(params, setting.compiled, planning.row_counts(params))


def warnings(setting: Setting, rows: list[RowCount] | None = None) -> list[str]:
    """The guidance warnings: the same for steps, check and submit."""
    from vertex_rlhf.config.guidance import run_warnings

    d = setting.params.dataset
    counts = {r.kind: r.rows for r in rows} if rows is not None else {}
    return run_warnings(
        setting.params,
        counts.get("preference", d.preference_size),
        counts.get("prompt", d.prompt_size),
    )


def dataset_rows(
    setting: Setting, required: bool, on_rows: RowsSeen | None = None
) -> list[RowCount]:
    """Row counts of the preference and prompt datasets: counted when local, else declared.

    Raises:
        ConfigError: ``required`` and a gs:// dataset has no declared size.
        DataError: a local dataset has invalid rows.
    """
    d, model = setting.params.dataset, setting.params.training.large_model_reference
    found = []
    for path, kind, declared, key in (
        (d.preference_dataset, "preference", d.preference_size, "dataset.preference_size"),
        (d.prompt_dataset, "prompt", d.prompt_size, "dataset.prompt_size"),
    ):
        count = _row_count(path, kind, declared, key, required, model)
        if count is not None:
            found.append(count)
            if on_rows:
                on_rows(count)
    return found


def _row_count(
    path: str, kind: str, declared: int | None, key: str, required: bool, model: str
) -> RowCount | None:
    """Counts a local dataset's rows (validating them), or uses the declared size."""
    if not path.startswith("gs://"):
        from vertex_rlhf.data.report import count_rows

        return RowCount(kind, count_rows(path, kind, model), True, path)
    if declared is None:
        if not required:
            return None
        raise ConfigError(
            [
                f"{key}: not set; steps for gs:// data are computed offline from the declared"
                f" row count (the pipeline counts the real rows at run time). Set {key}=ROWS"
            ]
        )
    return RowCount(kind, declared, False, key)


@dataclass(frozen=True)
class Migrated:
    """Where ``migrate-config`` wrote the parameter file, and what it changed."""

    written: Path
    source: Path
    migration: Migration


def migrate_config(config: str | Path, params_dir: Path, env: str | None) -> Migrated:
    """Writes ``params/<env>.yaml`` from a config file in the original layout.

    Raises:
        ConfigError: the file cannot be read as the original layout, or ``env`` is invalid.
    """
    import vertex_rlhf.original.layout as legacy

    target, migration = legacy.migrate(config, params_dir, env)
    return Migrated(Path(target), Path(config), migration)
