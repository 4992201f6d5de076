"""Checks that the CLI's parallel reader gives the single pass's report, byte for byte.

    python scripts/check_parallel_parity.py [--mb 200] [--workers 2] [--dir DIR]

Generates realistic preference rows (as ``bench_data.py`` does), sprinkles broken rows,
blank lines among them, then compares, as JSON text, validate-data's report and
profile (``files.validate``) read by one process and by ``--workers`` forked processes
(``parallel.check_files``), and the report against the component's single pass
(``rules.validate_dataset_files``, what the template ships). Exits non-zero on any
difference.
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_data import generate

BROKEN = [
    b'{"input_text": "x", "candidate_0": NaN, "candidate_1": "b", "choice": 0}',
    b'{"input_text": "x", "candidate_0": "a", "candidate_1": "b", "choice": 2}',
    b'{"input_text": "x", "candidate_0": "a", "candidate_1": "a", "choice": 0, "choice": 1}',
    b'{"input_text": "bad \\ud800", "candidate_0": "a", "candidate_1": "b", "choice": 0}',
    b'{"input_text": "latin \xe9", "candidate_0": "a", "candidate_1": "b", "choice": 0}',
    b'{"input_text": "x", "candidate_0": "a"',
    b"",
    b"   ",
]


def sprinkle(clean: Path, out: Path, seed: int = 0) -> None:
    """Copies ``clean`` with broken rows and blank lines inserted at random places."""
    rng = random.Random(seed)
    with clean.open("rb") as source, out.open("wb") as target:
        for line in source:
            if rng.random() < 0.002:
                target.write(rng.choice(BROKEN) + b"\n")
            target.write(line)


def reports(path: str, workers: int) -> tuple[str, str]:
    from vertex_rlhf.data import files
    from vertex_rlhf.data.profile import Profile
    from vertex_rlhf.data.rules import validate_dataset_files

    component = validate_dataset_files(path, "preference", 50)  # always one pass
    profile = Profile()
    report = files.validate(path, "preference", 50, lambda _: profile, processes=workers)
    cli = {"report": report, "profile": profile.summary()}
    return json.dumps(component, sort_keys=True), json.dumps(cli, sort_keys=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dir", help="where to write the files (default: a temp dir)")
    args = parser.parse_args()
    directory = Path(args.dir or tempfile.mkdtemp(prefix="rlhf-parity-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        clean, path = directory / "clean.jsonl", directory / "sprinkled.jsonl"
        generate(clean, args.mb, seed_format=False)
        sprinkle(clean, path)
        clean.unlink()
        results = {}
        for workers in (1, args.workers):
            start = time.perf_counter()
            results[workers] = reports(str(path), workers)
            print(f"{workers} process(es): {time.perf_counter() - start:.2f} s")
        single, parallel = results[1], results[args.workers]
        summary = json.loads(single[0])
        print(
            f"{path.stat().st_size / 2**20:.0f} MB, {summary['rows']} rows,"
            f" {summary['errors']} problems, {summary['blank_lines']} blank lines"
        )
        same = single == parallel
        print(f"validate-data, 1 vs {args.workers}: {'identical' if same else 'DIFFERENT'}")
        shipped = json.loads(single[0]) == json.loads(parallel[1])["report"]
        print(f"component vs validate-data: {'identical' if shipped else 'DIFFERENT'}")
        return 0 if same and shipped else 1
    finally:
        if not args.dir:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
