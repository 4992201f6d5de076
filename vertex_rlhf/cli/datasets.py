"""``rlhf validate-data`` and ``convert-data``: datasets, local or gs://."""

from __future__ import annotations

import argparse
import sys

from vertex_rlhf.cli import flags
from vertex_rlhf.config import values
from vertex_rlhf.data.rules import KINDS
from vertex_rlhf.errors import ConfigError, DataError
from vertex_rlhf.usecases import datasets
from vertex_rlhf.views.text import path


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the datasets' subcommands."""
    p = sub.add_parser("validate-data", help="validate and profile datasets, local or gs://")
    flags.common(p)
    p.add_argument(
        "env", nargs="?", type=values.environment_spec("environment"), help=flags.ENV_HELP
    )
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotlist overrides")
    p.add_argument(
        "--path",
        type=values.local_data_path("--path"),
        help="a file or glob, local or gs://, instead of an environment",
    )
    p.add_argument("--kind", choices=KINDS, help="with --path")
    p.add_argument(
        "--model",
        type=values.model_name("--model"),
        help="with --path: rows must have this model's layout",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--max-reported",
        type=values.count("--max-reported", minimum=0),
        default=5,
        help="problems shown per dataset",
    )
    p.add_argument("--no-profile", action="store_true", help="validate only: no profile (faster)")
    p.set_defaults(func=run_validate_data)

    p = sub.add_parser(
        "convert-data", help="convert prompt/chosen/rejected rows to Vertex's RLHF layout"
    )
    p.add_argument(
        "input",
        type=values.local_data_path("input", directory_ok=False),
        help="input path or glob, local or gs://",
    )
    p.add_argument("output", type=values.data_output("output"), help="output file, local or gs://")
    p.add_argument("--kind", required=True, choices=("preference", "prompt"))
    p.add_argument(
        "--seed",
        type=values.count("--seed", minimum=0),
        default=0,
        help="seeds candidate placement and split",
    )
    p.add_argument(
        "--eval-out", type=values.data_output("--eval-out"), help="write an eval split here"
    )
    p.add_argument(
        "--eval-fraction",
        type=values.fraction("--eval-fraction"),
        default=0.0,
        help="share of prompts for eval",
    )
    p.add_argument("--force", action="store_true", help="replace existing outputs")
    p.add_argument("--skip-invalid", action="store_true", help="skip bad rows instead of stopping")
    p.add_argument(
        "--rejects",
        type=values.data_output("--rejects"),
        help="skipped rows go here (default OUTPUT.rejects.jsonl)",
    )
    p.set_defaults(func=run_convert_data)


def run_validate_data(args: argparse.Namespace) -> int:
    """Validates and profiles an environment's datasets, or one --path."""
    import json

    from vertex_rlhf.views import datasets as dataset_view
    from vertex_rlhf.views import live

    profile = not args.no_profile
    if args.path:
        if not args.kind:
            raise ConfigError(["--kind is required with --path: preference, prompt or eval"])
        with live.read_progress() as progress:
            result = datasets.validate_path(
                args.path, args.kind, args.model or "", args.max_reported, profile, progress
            )
    elif args.env:
        setting = flags.setting(args, ("dataset", "training"))
        with live.read_progress() as progress:
            result = datasets.validate_environment(setting, args.max_reported, profile, progress)
    else:
        raise ConfigError(["name an environment (validate-data dev) or --path PATH --kind KIND"])
    print(json.dumps(result.as_dict(), indent=2) if args.json else dataset_view.render(result))
    if not result.valid:
        raise DataError("invalid rows found (listed above)", hint="correct or remove them")
    return 0


def run_convert_data(args: argparse.Namespace) -> int:
    """Converts prompt/chosen/rejected rows to the Vertex RLHF format."""
    from vertex_rlhf.views import live

    order = datasets.ConvertOrder(
        args.input,
        args.output,
        args.kind,
        seed=args.seed,
        eval_output=args.eval_out,
        eval_fraction=args.eval_fraction,
        force=args.force,
        skip_invalid=args.skip_invalid,
        rejects=args.rejects,
    )
    with live.read_progress() as progress:
        stats = datasets.convert(order, progress)
    print(
        f"read {stats.read} rows; wrote {stats.written['train']} to {path(args.output)}"
        + (f" and {stats.written['eval']} to {path(args.eval_out)}" if args.eval_out else "")
    )
    if args.kind == "preference":
        print(f"choice balance: 0: {stats.choices[0]}, 1: {stats.choices[1]} (seed {args.seed})")
    if stats.rejected:
        print(
            f"skipped {stats.rejected} invalid rows; see {path(order.rejects_path)}",
            file=sys.stderr,
        )
    return 0
