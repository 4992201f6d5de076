"""Writes the goldens of ``rlhf validate-data`` (text and ``--json``) for the cases in
cases.json; run from the repository root with the code whose output is the reference:

    .venv/bin/python tests/golden/validate_data/generate.py

The repository root in the output is written as ``<ROOT>``.
"""

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[2]


def run(args: list[str]) -> tuple[str, int]:
    done = subprocess.run(
        [sys.executable, "-m", "vertex_rlhf", "validate-data", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "PYTHONIOENCODING": "utf-8"},
        check=False,
    )
    return done.stdout.replace(str(ROOT), "<ROOT>"), done.returncode


def main() -> None:
    cases = json.loads((HERE / "cases.json").read_text(encoding="utf-8"))
    codes = {}
    for name, args in cases.items():
        for suffix, extra in ((".txt", []), (".json", ["--json"])):
            out, code = run([*args, *extra])
            (HERE / f"{name}{suffix}").write_text(out, encoding="utf-8")
            codes[f"{name}{suffix}"] = code
    (HERE / "exit_codes.json").write_text(json.dumps(codes, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
