"""The ``rlhf`` command line: thin wrappers over the library, one subcommand each.

Heavy libraries (kfp, GCPC, aiplatform) are imported only by the subcommands that
use them, so checking parameters and steps stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from vertex_rlhf.errors import ConfigError, DataError, PipelineError, RLHFError

log = logging.getLogger("rlhf")


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--params-dir", default="params", help="where base.yaml and <env>.yaml are")
    parser.add_argument("--compiled-dir", default="compiled", help="where templates are compiled")


def _env_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("env", help="environment: params/<env>.yaml over params/base.yaml")
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="OmegaConf dotlist overrides"
    )


def cmd_compile(args: argparse.Namespace) -> int:
    """Compiles the pipeline into compiled/, or with --check, fails if it is stale."""
    from vertex_rlhf import compiler

    directory = Path(args.compiled_dir)
    if args.check:
        problems = compiler.stale_problems(directory)
        if problems:
            raise PipelineError(
                "compiled/ is stale: " + "; ".join(problems),
                hint="run `make compile` and commit compiled/",
            )
        print(f"{directory}/ is up to date with the sources")
        return 0
    template, changed = compiler.compile_to(directory)
    state = "written" if changed else "unchanged"
    print(f"{directory / template.file_name} ({state}, sha256 {template.sha256[:12]})")
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Checks an environment's parameters against the schema and the compiled signature."""
    import yaml

    from vertex_rlhf import signature
    from vertex_rlhf.params import load_params

    params = load_params(args.env, args.overrides, args.params_dir)
    values = signature.pipeline_parameter_values(params)
    template = signature.current_template_path(args.compiled_dir)
    signature.check_against_signature(values, signature.template_inputs(template), template.name)
    if args.print:
        print(
            yaml.safe_dump(
                {"template": str(template), "parameter_values": values}, sort_keys=False
            ),
            end="",
        )
    print(f"{args.params_dir}/{args.env}.yaml: valid for {template.name}", file=sys.stderr)
    return 0


def cmd_steps(args: argparse.Namespace) -> int:
    """Prints the training steps a run of this environment will get."""
    from vertex_rlhf.params import load_params
    from vertex_rlhf.steps import calculate_training_steps

    params = load_params(
        args.env, args.overrides, args.params_dir, sections=("dataset", "training")
    )
    d, t = params.dataset, params.training
    preference_rows = _row_count(
        d.preference_dataset, "preference", d.preference_size, "dataset.preference_size"
    )
    prompt_rows = _row_count(d.prompt_dataset, "prompt", d.prompt_size, "dataset.prompt_size")
    steps, warnings = calculate_training_steps(
        preference_rows,
        prompt_rows,
        t.reward_model_epochs,
        t.reinforcement_learning_epochs,
        t.reward_model_train_steps or 0,
        t.reinforcement_learning_train_steps or 0,
    )
    print(f"Optimal training steps: {steps}")
    for warning in warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _row_count(path: str, kind: str, declared: int | None, key: str) -> int:
    """Counts a local dataset's rows (validating them), or uses the declared size."""
    if not path.startswith("gs://"):
        from vertex_rlhf.dataset_rules import report_summary, validate_dataset_files

        report = validate_dataset_files(path, kind)
        if report["errors"]:
            raise DataError(
                report_summary(report), hint="correct or remove the rows above, then run again"
            )
        rows: int = report["rows"]
        print(f"{kind}: {rows} rows counted in {path}", file=sys.stderr)
        return rows
    if declared is None:
        raise ConfigError(
            [
                f"{key}: not set; steps for gs:// data are computed offline from the declared"
                f" row count (the pipeline counts the real rows at run time). Set {key}=ROWS"
            ]
        )
    print(f"{kind}: {declared} rows declared by {key}", file=sys.stderr)
    return declared


def build_parser() -> argparse.ArgumentParser:
    """Builds the ``rlhf`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="rlhf", description="RLHF tuning pipelines on Vertex AI: compile, check, steps."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("compile", help="compile the pipeline into compiled/")
    _common(p)
    p.add_argument("--check", action="store_true", help="fail if compiled/ is stale")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("check", help="check an environment's parameters")
    _common(p)
    _env_args(p)
    p.add_argument("--print", action="store_true", help="print the resolved parameter values")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("steps", help="print the training steps a run will get")
    _common(p)
    _env_args(p)
    p.set_defaults(func=cmd_steps)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; domain errors print one screen and return their exit status."""
    debug = os.environ.get("LOG_LEVEL", "").upper() == "DEBUG"
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO, format="%(levelname)s %(message)s"
    )
    args = build_parser().parse_args(argv)
    try:
        status: int = args.func(args)
    except RLHFError as error:
        if debug:
            raise
        print(error.render(), file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
