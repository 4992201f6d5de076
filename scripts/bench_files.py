"""Benchmark validation of a dataset of several files (a glob), before and after a change.

    python scripts/bench_files.py [--files 8] [--mb 50] [--repeat 3] [--dir DIR] [--before TREE]

Writes ``--files`` files of ``--mb`` MB of realistic preference rows (``bench_data.generate``)
and times, each in a fresh process and alternating so that both see the same machine: the
component's path (``rules.validate_dataset_files(GLOB, "preference")``) and
``rlhf validate-data --path GLOB --kind preference`` with and without ``--no-profile``.
``--before TREE`` (e.g. a ``git worktree`` of the previous commit) runs the same with that
tree's ``vertex_rlhf`` first on ``PYTHONPATH``. Each mode counts its fastest of ``--repeat``
runs. The machine's headroom (two busy processes against one: 2.0 on two idle cores, 1.0 on
one) is printed too, since other work on the machine caps any parallel speed-up.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_data import generate

COMPONENT = (
    "import sys, time; from vertex_rlhf.data.rules import validate_dataset_files as v;"
    " t = time.perf_counter(); r = v(sys.argv[1], 'preference');"
    " print(time.perf_counter() - t); assert r['rows'] and not r['errors']"
)
BUSY = "import sys; sum(range(30_000_000))"


def timed(command: list[str], tree: str | None, inner: bool = False) -> float:
    """Runs a command in a fresh process; its wall time, or the time it prints (``inner``).

    It runs in the temporary directory, so that ``python -c`` and ``-m`` do not import
    this checkout's ``vertex_rlhf`` from the current directory instead of ``tree``'s.
    """
    env = dict(os.environ, PYTHONPATH=tree) if tree else dict(os.environ)
    start = time.perf_counter()
    run = subprocess.run(
        command, env=env, check=True, capture_output=True, text=True, cwd=tempfile.gettempdir()
    )
    out = run.stdout
    return float(out.split()[-1]) if inner else time.perf_counter() - start


def headroom() -> float:
    """How many times one busy process's work two of them get done in the same time."""
    one = timed([sys.executable, "-c", BUSY], None)
    start = time.perf_counter()
    busy = [subprocess.Popen([sys.executable, "-c", BUSY]) for _ in range(2)]
    for process in busy:
        process.wait()
    return 2 * one / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--mb", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", help="where to write the files (default: a temporary directory)")
    parser.add_argument("--before", help="a source tree to compare with (PYTHONPATH)")
    args = parser.parse_args()
    root = Path(args.dir or tempfile.mkdtemp(prefix="bench-files-"))
    root.mkdir(parents=True, exist_ok=True)
    for i in range(args.files):
        path = root / f"train-{i:02d}.jsonl"
        if not path.exists() or path.stat().st_size < args.mb << 20:
            generate(path, args.mb, seed_format=False)
    glob = str(root / "train-*.jsonl")
    rlhf = [sys.executable, "-m", "vertex_rlhf.cli", "validate-data", "--path", glob]
    rlhf += ["--kind", "preference"]
    modes = {
        "validate_dataset_files (component)": ([sys.executable, "-c", COMPONENT, glob], True),
        "rlhf validate-data --no-profile": ([*rlhf, "--no-profile"], False),
        "rlhf validate-data (with profile)": (rlhf, False),
    }
    trees = {"before": args.before, "after": None} if args.before else {"now": None}
    best: dict[tuple[str, str], float] = {}
    shares = []
    for _ in range(args.repeat):
        shares.append(headroom())
        for mode, (command, inner) in modes.items():
            for label, tree in trees.items():
                seconds = timed(command, tree, inner)
                best[mode, label] = min(best.get((mode, label), seconds), seconds)
    print(f"{args.files} files x {args.mb} MB ({glob}); {len(os.sched_getaffinity(0))} cores;")
    print(f"headroom (2 busy processes vs 1): {min(shares):.2f}-{max(shares):.2f}")
    print("| mode | " + " | ".join(trees) + (" | speed-up |" if args.before else " |"))
    print("|---|" + "---|" * (len(trees) + (1 if args.before else 0)))
    for mode in modes:
        cells = [f"{best[mode, label]:.2f} s" for label in trees]
        if args.before:
            cells.append(f"{best[mode, 'before'] / best[mode, 'after']:.2f}x")
        print(f"| {mode} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
