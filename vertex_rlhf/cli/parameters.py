"""``rlhf check``, ``steps``, ``plan`` and ``migrate-config``: an environment's parameters."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from vertex_rlhf.cli import flags
from vertex_rlhf.config import values
from vertex_rlhf.usecases import parameters
from vertex_rlhf.views import parameters as shown
from vertex_rlhf.views.text import path


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the parameters' subcommands."""
    p = sub.add_parser("check", help="check an environment's parameters")
    flags.common(p)
    flags.env_args(p)
    p.add_argument("--print", action="store_true", help="print the resolved parameter values")
    p.set_defaults(func=run_check)

    p = sub.add_parser("steps", help="print the training steps a run will get")
    flags.common(p)
    flags.env_args(p)
    p.set_defaults(func=run_steps)

    p = sub.add_parser("plan", help="print what a run will book, from GCPC's own specs")
    flags.common(p)
    flags.env_args(p)
    p.set_defaults(func=run_plan)

    p = sub.add_parser(
        "migrate-config", help="write params/<env>.yaml from an original-layout config file"
    )
    p.add_argument(
        "config",
        type=values.existing_file("migrate-config"),
        help="the original config file (dataset/training/vertex_ai)",
    )
    p.add_argument("--params-dir", default="params", help="where base.yaml is; written there")
    p.add_argument("--env", help="environment name (default: from the file name)")
    p.set_defaults(func=run_migrate_config)


def run_check(args: argparse.Namespace) -> int:
    """Checks an environment's parameters against the schema and the compiled signature."""
    import yaml

    setting = flags.setting(args)
    checked = parameters.check(setting, _row_line)
    if args.print:
        printed = {"template": str(checked.template), "parameter_values": checked.parameter_values}
        print(yaml.safe_dump(printed, sort_keys=False), end="")
    _warnings(checked.warnings)
    print(f"{setting.label}: valid for {checked.template.name}", file=sys.stderr)
    return 0


def run_steps(args: argparse.Namespace) -> int:
    """Prints the training steps a run of this environment will get."""
    answer = parameters.steps(flags.setting(args, ("dataset", "training")), _row_line)
    line = shown.steps_line(
        answer.steps,
        answer.reward_model_train_steps,
        answer.reinforcement_learning_train_steps,
    )
    print(line)
    _warnings(answer.warnings)
    return 0


def run_plan(args: argparse.Namespace) -> int:
    """Prints what a run will book: machines, steps, stages, cache, template."""
    from vertex_rlhf.views.plan import render_plan

    print(render_plan(parameters.plan(flags.setting(args))))
    return 0


def run_migrate_config(args: argparse.Namespace) -> int:
    """Writes params/<env>.yaml from a config file in the original description's layout."""
    done = parameters.migrate_config(args.config, Path(args.params_dir), args.env)
    print(f"wrote {path(done.written)} from {path(done.source)} (not modified)")
    for note in done.migration.notes:
        print(f"  {note}")
    print(f"  check it with: `make check ENV={path(shlex.quote(str(done.written)))}`")
    return 0


def _row_line(count: parameters.RowCount) -> None:
    print(shown.row_line(count), file=sys.stderr)


def _warnings(warnings: list[str]) -> None:
    for line in shown.warning_lines(warnings):
        print(line, file=sys.stderr)
