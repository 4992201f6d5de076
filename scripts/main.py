"""The original description's command line, over the same use cases as ``rlhf`` and make:

    python scripts/main.py --config FILE [--calculate-steps | --validate | --wait |
                                          --monitor JOB | --health-check]

No flag submits a run (``--wait`` follows it to the end). FILE is a parameter file
(``params/dev.yaml``) or a config file in the original description's layout. The
commands live in ``vertex_rlhf/original/commands.py``; this launcher first checks that the
Python running it has the project's packages.
"""

from __future__ import annotations

import argparse
import sys

# What `make setup` installs; checked before anything is imported, so a Python without
# them (no venv active) says how to set up instead of raising ModuleNotFoundError.
REQUIRED = ("vertex_rlhf", "omegaconf", "yaml", "kfp", "google.cloud.aiplatform")
SETUP_STATUS = 3


def missing_packages() -> list[str]:
    """The required modules this Python cannot import (found without importing them)."""
    import importlib.util

    missing = []
    for name in REQUIRED:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def setup_instructions(missing: list[str]) -> str:
    """What to run to get a Python that has the project's packages."""
    import os

    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    venv_python = os.path.join(repo, ".venv", "bin", "python")
    args = " ".join(sys.argv[1:]) or "--config params/dev.yaml --calculate-steps"
    lines = [
        f"error: {sys.executable} (Python {sys.version.split()[0]}) lacks the project's"
        f" packages ({', '.join(missing)}).",
    ]
    if os.path.exists(venv_python):
        lines.append(
            f"  fix: run it with the project's virtualenv: {venv_python} {sys.argv[0]} {args}"
        )
    else:
        lines.append(f"  fix: cd {repo} && make setup   (creates .venv with the pinned packages)")
        lines.append(f"       then: .venv/bin/python scripts/main.py {args}")
    lines.append("       or activate it first: source .venv/bin/activate")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    """The original description's flags (``vertex_rlhf.original.commands``)."""
    from vertex_rlhf.original.commands import build_parser as original_parser

    return original_parser()


def run(argv: list[str] | None = None) -> int:
    """Parses the original flags and runs the matching command."""
    from vertex_rlhf.original.commands import run as original_run

    return original_run(argv)


def main() -> int:
    """Checks the packages are there, then runs."""
    missing = missing_packages()
    if missing:
        print(setup_instructions(missing), file=sys.stderr)
        return SETUP_STATUS
    return run()


if __name__ == "__main__":
    sys.exit(main())
