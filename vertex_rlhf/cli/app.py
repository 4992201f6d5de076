"""The ``rlhf`` program: its parser (a module per noun adds its subcommands), logging,
and the one place a domain error becomes a screen and an exit status.

Heavy libraries (kfp, GCPC, aiplatform) are imported only by the subcommands that use
them, so checking parameters and steps stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from vertex_rlhf.cli import (
    datasets,
    doctor,
    metrics,
    parameters,
    report,
    runs,
    schedules,
    templates,
)
from vertex_rlhf.config import values
from vertex_rlhf.errors import RLHFError
from vertex_rlhf.views.logs import EscapingFormatter
from vertex_rlhf.views.text import ERROR_LIMIT, outside

# Each noun's module adds its subcommands, in the order `rlhf --help` lists them.
NOUNS = (templates, parameters, datasets, runs, schedules, metrics, report, doctor)


def build_parser() -> argparse.ArgumentParser:
    """Builds the ``rlhf`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="rlhf", description="RLHF tuning pipelines on Vertex AI, as code."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for noun in NOUNS:
        noun.register(sub)
    return parser


def yes_no_flags(parser: argparse.ArgumentParser) -> list[str]:
    """The yes/no flags of every subcommand (``--dry-run``, ``--wait``, ``--yes``, ...)."""
    flags = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags += yes_no_flags(sub)
        elif isinstance(action, argparse._StoreTrueAction):
            flags += action.option_strings
    return sorted(set(flags))


def subcommands() -> list[str]:
    """The names of the subcommands this installation has."""
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def _without_traceback(record: logging.LogRecord) -> bool:
    """Keeps a library's logged error to one line (tracebacks with LOG_LEVEL=DEBUG only).

    The traceback becomes the exception's type and message; Google libraries' INFO
    chatter is dropped.
    """
    if record.name.startswith("google") and record.levelno < logging.WARNING:
        return False
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        record.msg, record.args = f"{record.getMessage()} ({type(error).__name__}: {error})", None
    record.exc_info = None
    record.exc_text = None
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; domain errors print one screen and return their exit status."""
    try:
        return _main(argv)
    except BrokenPipeError:  # the reader left (`rlhf validate-data --json | head -1`)
        # Nothing more to say, to anyone: stdout goes nowhere, so that the exit's flush
        # cannot fail again; the status is a shell's for a process that SIGPIPE ended.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parses the arguments; each flag's value passes its ``values`` type on the way.

    ``--flag=VALUE`` for a yes/no flag and ``--shell-words TEXT`` (how make passes
    DRY_RUN=, OVERRIDES=, ARGS=) are read by the same door first.
    """
    args, extra = parser.parse_known_args(values.expand_argv(argv, yes_no_flags(parser)))
    # Overrides may also follow the flags: `rlhf submit dev --dry-run training.kl_coeff=0.2`.
    if extra and hasattr(args, "overrides") and not any(x.startswith("-") for x in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _configure_logging(debug: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO, format="%(levelname)s %(message)s"
    )
    for handler in logging.getLogger().handlers:
        handler.setFormatter(EscapingFormatter("%(levelname)s %(message)s"))
        if not debug:
            handler.addFilter(_without_traceback)
    # google-api-core makes an unconfigured "google" logger stop propagating, so the SDK's
    # records (tracebacks included) bypass the handler above; configured, it leaves it be.
    logging.getLogger("google").setLevel(logging.DEBUG if debug else logging.INFO)


def _main(argv: Sequence[str] | None) -> int:
    debug = os.environ.get("LOG_LEVEL", "").upper() == "DEBUG"
    _configure_logging(debug)
    parser = build_parser()
    try:
        args = parse(parser, sys.argv[1:] if argv is None else argv)
        from vertex_rlhf.cloud import calls

        # --timeout bounds every API call and retry (submit's bounds only its watch).
        budget = None if args.command == "submit" else getattr(args, "timeout", None)
        with calls.within(budget):
            status: int = args.func(args)
    except RLHFError as error:
        if debug:  # the traceback too, but the same exit status as without it
            import traceback

            traceback.print_exc()
        # Messages quote names, rows and answers from outside: escaped and bounded here too.
        print(outside(error.render(), ERROR_LIMIT), file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return status
