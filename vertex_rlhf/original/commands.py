"""The original description's command line (``scripts/main.py --config FILE ...``): its
commands over the same use cases and views as ``rlhf``.

FILE is a parameter file (``params/dev.yaml``) or a config file in the original layout;
each command prints what the matching ``rlhf`` command prints and returns its exit status
(domain errors are raised, for ``scripts/main.py`` to print).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import vertex_rlhf.original.layout as legacy
from vertex_rlhf.config.environment import find_project_root
from vertex_rlhf.config.params import SECTIONS
from vertex_rlhf.errors import DataError, RLHFError
from vertex_rlhf.usecases import datasets, parameters, runs
from vertex_rlhf.usecases.setting import Setting, compiled_folder
from vertex_rlhf.views import parameters as shown
from vertex_rlhf.views.following import resume_hint, show_watch, submitted_lines


def setting_of(
    config_path: str | Path,
    sections: Sequence[str] = SECTIONS,
    compiled_dir: str | Path | None = None,
) -> tuple[Setting, legacy.Migration | None]:
    """A config file's parameters as a ``Setting``, and its migration when it is in the
    original layout (what its keys became, told on stderr).

    Raises:
        ConfigError: naming the file, line and key.
    """
    path = Path(config_path)
    params, migration = legacy.load_config_file(path, sections=sections)
    _note_migration(migration)
    if migration is None:
        env, root = path.stem, path.resolve().parent.parent
    else:
        env, root = legacy.default_env_name(path), find_project_root()
    folder = compiled_folder(compiled_dir)
    return Setting(params, env, str(path), root, folder, str(path)), migration


def _note_migration(migration: legacy.Migration | None) -> None:
    """Tells a user of an original-layout file what its keys became (on stderr)."""
    if migration is None:
        return
    print(
        f"{migration.source}: the original description's layout, read as params/"
        f"{legacy.default_env_name(migration.source)}.yaml over params/base.yaml:",
        file=sys.stderr,
    )
    for note in migration.notes:
        print(f"  {note}", file=sys.stderr)
    print(
        f"  `rlhf migrate-config {migration.source}` writes it to params/ for good",
        file=sys.stderr,
    )


def _row_line(count: parameters.RowCount) -> None:
    print(shown.row_line(count), file=sys.stderr)


def _stderr(lines: Sequence[str]) -> None:
    for line in lines:
        print(line, file=sys.stderr)


def calculate_steps(config_path: str | Path) -> int:
    """``--calculate-steps``: the training steps a run of the file will get (``rlhf steps``)."""
    setting, _ = setting_of(config_path, ("dataset", "training"))
    answer = parameters.steps(setting, _row_line)
    t = (answer.reward_model_train_steps, answer.reinforcement_learning_train_steps)
    print(shown.steps_line(answer.steps, *t))
    _stderr(shown.warning_lines(answer.warnings))
    return 0


def storage_unreachable_reason() -> str | None:
    """Why Cloud Storage cannot be read from here (no credentials), or None if it can."""
    from vertex_rlhf.data.files import storage_client

    try:
        storage_client()
    except RLHFError as error:
        return error.message
    return None


def validate_config(config_path: str | Path) -> int:
    """``--validate``: ``rlhf check``, then ``rlhf validate-data`` where the data can be read.

    Local datasets are always validated; ``gs://`` ones when Cloud Storage is reachable
    (credentials or an emulator), otherwise a note says how to check them.

    Raises:
        ConfigError, DataError: invalid parameters or rows.
    """
    from vertex_rlhf.views import datasets as dataset_view
    from vertex_rlhf.views import live

    setting, migration = setting_of(config_path)
    checked = parameters.check(setting, _row_line)
    _stderr(shown.warning_lines(checked.warnings))
    print(f"{setting.label}: valid for {checked.template.name}", file=sys.stderr)
    d = setting.params.dataset
    remote = [p for p in (d.preference_dataset, d.prompt_dataset, d.eval_dataset) if p]
    if any(p.startswith("gs://") for p in remote):
        reason = storage_unreachable_reason()
        if reason:
            print(
                f"datasets not checked: Cloud Storage is not reachable ({reason}); run"
                f" {_validate_data_command(Path(config_path), migration)} where it is",
                file=sys.stderr,
            )
            return 0
    with live.read_progress() as progress:
        result = datasets.validate_environment(setting, progress=progress)
    print(dataset_view.render(result))
    if not result.valid:
        raise DataError("invalid rows found (listed above)", hint="correct or remove them")
    return 0


def _validate_data_command(config_path: Path, migration: legacy.Migration | None) -> str:
    """The command that validates a config file's datasets, as a user runs it."""
    if migration is None:
        return f"`make validate-data ENV={config_path}`"
    env = legacy.default_env_name(config_path)
    return f"`rlhf migrate-config {config_path}` once, then `make validate-data ENV={env}`"


def submit_config(
    config_path: str | Path, wait: bool = False, compiled_dir: str | Path | None = None
) -> int:
    """Submits a run of the file (``rlhf submit``); a stale ``compiled/`` is recompiled.

    The fresh compile goes to a scratch folder: ``compiled/`` is never modified here. A
    terminal is shown what the run books and asked first, as ``rlhf submit`` does.

    Returns:
        The exit status of the submit (and of the run, with ``wait``).
    """
    from vertex_rlhf.template import compiler

    setting, _ = setting_of(config_path, compiled_dir=compiled_dir)
    problems = (
        []
        if setting.params.vertex_ai.template_version
        else (compiler.stale_problems(setting.compiled))
    )
    if not problems:  # a published version does not use compiled/
        return _submit(setting, wait)
    print(
        f"notice: {setting.compiled}/ is stale ({'; '.join(problems)}); submitting a fresh"
        " compile of the sources. Run `make compile` and commit compiled/ to record it.",
        file=sys.stderr,
    )
    with tempfile.TemporaryDirectory(prefix="rlhf-compiled-") as fresh:
        compiler.compile_to(Path(fresh))
        return _submit(Setting(**{**vars(setting), "compiled": Path(fresh)}), wait)


def _submit(setting: Setting, wait: bool) -> int:
    from vertex_rlhf.views.plan import confirm_booking

    with runs.prepared(setting) as ready:
        _stderr([*ready.notes, *shown.warning_lines(ready.warnings)])
        request = ready.request
        project = setting.params.vertex_ai.project_id
        booked = runs.booking(setting) if sys.stdin.isatty() else None
        if booked and not confirm_booking(booked, request.template, project, request.job_id):
            print("not submitted: nothing was sent", file=sys.stderr)
            return 1
        submitted = runs.send(ready)
    print(submitted_lines(submitted.name, submitted.console_url))
    if not wait:
        print(f"  follow it with: {resume_hint(submitted.name, setting.spec)}")
        return 0
    return _follow(setting, submitted.name)


def monitor_job(config_path: str | Path, job: str) -> int:
    """``--monitor JOB``: follows a job in the file's project and region to its end."""
    setting, _ = setting_of(config_path, ("vertex_ai",))
    return _follow(setting, job)


def _follow(setting: Setting, job: str) -> int:
    from vertex_rlhf.cloud import monitor

    target, name_ = runs.locate(setting, job)
    watch = runs.Watch(runs.metrics_log(name_, None))
    assert watch.metrics_log is not None
    status = show_watch(
        name_,
        target.console_url(name_),
        watch.metrics_log,
        lambda out, callback: runs.follow(target, name_, watch, out, callback),
        resume_hint(name_, setting.spec),
        None,
    )
    if status is None:
        return 130
    error = monitor.final_error(status)
    if error:
        raise error
    return 0


def run_health_check(config_path: str | Path) -> int:
    """``--health-check``: ``rlhf doctor`` on the file; its exit status."""
    setting, _ = setting_of(config_path)
    return run_health_check_of(setting)


def run_health_check_of(setting: Setting) -> int:
    """``rlhf doctor`` on loaded parameters: prints the checks; their exit status."""
    from vertex_rlhf.cloud.health import exit_status
    from vertex_rlhf.usecases.doctor import doctor
    from vertex_rlhf.views.health import render_health

    results = doctor(setting)
    print(render_health(results))
    return exit_status(results)


def build_parser() -> argparse.ArgumentParser:
    """The original description's flags; at most one action, none submits but ``--wait``
    and no action at all."""
    parser = argparse.ArgumentParser(
        prog="scripts/main.py",
        description="The original description's command line, over the same use cases as"
        " `rlhf`: python scripts/main.py --config FILE [--calculate-steps | --validate |"
        " --wait | --monitor JOB | --health-check]. Without an action it submits a run.",
    )
    parser.add_argument(
        "--config",
        required=True,
        help="params/<env>.yaml, or a config file in the original layout",
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--calculate-steps", action="store_true", help="print the training steps")
    action.add_argument(
        "--validate", action="store_true", help="check the file and, where reachable, the data"
    )
    action.add_argument("--wait", action="store_true", help="submit and follow the run to its end")
    action.add_argument("--monitor", metavar="JOB", help="follow a job (id or resource name)")
    action.add_argument(
        "--health-check", action="store_true", help="check credentials, APIs, bucket, quota"
    )
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """Parses the original flags and runs the matching command; errors print one screen."""
    from vertex_rlhf.views.text import ERROR_LIMIT, outside

    try:
        args = build_parser().parse_args(argv)
        if args.calculate_steps:
            return calculate_steps(args.config)
        if args.validate:
            return validate_config(args.config)
        if args.monitor:
            return monitor_job(args.config, args.monitor)
        if args.health_check:
            return run_health_check(args.config)
        return submit_config(args.config, wait=args.wait)
    except RLHFError as error:
        if os.environ.get("LOG_LEVEL", "").upper() == "DEBUG":
            raise
        print(outside(error.render(), ERROR_LIMIT), file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
