"""The flags several subcommands share, and the step from parsed flags to a ``Setting``.

Every value a flag takes passes a ``vertex_rlhf.config.values`` parser (its argparse
``type=``) before a command runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from vertex_rlhf.config import values
from vertex_rlhf.errors import ConfigError
from vertex_rlhf.usecases.setting import Setting, compiled_folder, load_setting

ENV_HELP = (
    "environment: a name (params/<name>.yaml over params/base.yaml; 1-30 of a-z, 0-9, -)"
    " or the path of a parameter file (params/dev.yaml, /abs/team.yaml)"
)


def common(parser: argparse.ArgumentParser) -> None:
    """``--params-dir`` and ``--compiled-dir``."""
    parser.add_argument(
        "--params-dir",
        type=values.existing_directory("--params-dir"),
        help="where base.yaml and <env>.yaml are (default: the project's params/, found"
        " from the current directory upwards, then beside the installed package)",
    )
    parser.add_argument(
        "--compiled-dir", help="where templates are compiled (default: the project's compiled/)"
    )


def env_args(parser: argparse.ArgumentParser) -> None:
    """The environment argument and its dotlist overrides."""
    parser.add_argument("env", type=values.environment_spec("environment"), help=ENV_HELP)
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="OmegaConf dotlist overrides"
    )


def job_args(parser: argparse.ArgumentParser) -> None:
    """A job, and the environment whose project and region it is looked up in."""
    common(parser)
    parser.add_argument("job", help="job id or projects/P/locations/L/pipelineJobs/ID")
    parser.add_argument(
        "--env",
        default="dev",
        type=values.environment_spec("--env"),
        help="environment (name or file) whose project/region to use",
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotlist overrides")


def watch_args(parser: argparse.ArgumentParser) -> None:
    """How a run is followed: metrics log, timeout, poll interval."""
    parser.add_argument(
        "--metrics-log",
        type=values.output_path("--metrics-log"),
        help="JSONL metrics log (default runs/JOB_ID.jsonl)",
    )
    parser.add_argument(
        "--timeout", type=values.seconds("--timeout"), help="stop watching after SECONDS"
    )
    parser.add_argument(
        "--poll-interval",
        type=values.seconds("--poll-interval"),
        default=15.0,
        help="seconds between polls after a change (backs off to 60 while nothing changes)",
    )


def api_timeout(parser: argparse.ArgumentParser) -> None:
    """``--timeout`` over every Google API call and retry of the command."""
    parser.add_argument(
        "--timeout",
        type=values.seconds("--timeout"),
        help="give up on the Google APIs after SECONDS, retries included",
    )


def setting(args: argparse.Namespace, sections: Sequence[str] | None = None) -> Setting:
    """The environment a command names (a name or a file), with its checked parameters
    (``sections``: the ones to resolve and check; default all)."""
    return load_setting(args.env, args.overrides, args.params_dir, args.compiled_dir, sections)


def compiled_dir(args: argparse.Namespace) -> Path:
    """``--compiled-dir``, or the project's ``compiled/`` wherever the command runs."""
    return compiled_folder(args.compiled_dir)


def check_flags(problems: list[str | None]) -> None:
    """Raises the flag problems found, all at once.

    Raises:
        ConfigError: any problem.
    """
    found = [p for p in problems if p]
    if found:
        raise ConfigError(found)
