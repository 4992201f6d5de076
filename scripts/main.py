"""Seed-compatible entry point, as in the original description:

    python scripts/main.py --config params/dev.yaml --calculate-steps

Maps the original description's flags onto the ``rlhf`` CLI; new work should use
``rlhf`` or the Makefile directly.
"""

import argparse
import sys
from pathlib import Path

from vertex_rlhf.cli import main as rlhf_main


def main() -> int:
    """Translates ``--config FILE --calculate-steps|--validate`` into an ``rlhf`` call."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", required=True, help="a parameter file, e.g. params/dev.yaml")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--calculate-steps", action="store_true", help="print the training steps")
    action.add_argument("--validate", action="store_true", help="check the parameter file")
    args = parser.parse_args()
    config = Path(args.config)
    command = "steps" if args.calculate_steps else "check"
    return rlhf_main([command, config.stem, "--params-dir", str(config.parent)])


if __name__ == "__main__":
    sys.exit(main())
