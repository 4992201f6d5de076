"""Benchmark dataset validation and conversion against plain parse loops, on realistic rows.

    python scripts/bench_data.py [--sizes 10 100 1000] [--repeat 3] [--before TREE] [--no-gcs]

Rows look like real preference data: prompts of 200-2000 characters, candidates of
100-1500, a quarter of the rows with non-ASCII text, newlines (paragraphs, list items)
and characters JSON escapes (quotes, backslashes, tabs) in the texts, ~5% repeated
prompts. Each measurement runs in its own process, so its peak RSS is its own.
Every ratio is taken against baselines measured in the same run: a stdlib ``json.loads``
loop, an ``orjson.loads`` loop, and (for conversion) a minimal orjson read-convert-write
loop; each mode, baselines included, counts its fastest of ``--repeat`` rounds (every
round runs every mode once). ``--before TREE`` (a ``git worktree`` of the commit to
compare with) measures that tree's library in the same rounds. Prints tables; asserts
nothing (the machines are noisy): read the numbers.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BASELINES = ("json.loads loop", "orjson loop", "orjson convert loop")
MODES = (
    "validate (component)",
    "validate",
    "validate+profile",
    "validate, 1 process",
    "validate+profile, 1 pr",
    "convert",
)

_ASCII_WORDS = [
    "the",
    "model",
    "answer",
    "summary",
    "post",
    "user",
    "asked",
    "about",
    "weather",
    "code",
    "python",
    "error",
    "fix",
    "data",
    "train",
    "reward",
    "policy",
    "value",
    "a",
    "an",
    "of",
    "to",
    "in",
    "on",
    "for",
    "with",
    "is",
    "was",
    "be",
    "by",
    "it",
    "this",
    "that",
]
_OTHER_WORDS = [
    "café",
    "naïve",
    "über",
    "straße",
    "東京",
    "数据",
    "модель",
    "ответ",
    "🙂",
    "ελληνικά",
]
_ESCAPES = ['"quoted"', "back\\slash", "tab\there", "C:\\path", 'say "yes"']
_BREAKS = ["\n", "\n\n", "\n- ", "\n1. "]


def _corpus(rng: random.Random, words: list[str], size: int) -> str:
    """A long text to cut rows from: words, punctuation, newlines and characters JSON
    escapes (a few per row: a prompt of 1,000 characters holds about 4 of each)."""
    parts: list[str] = []
    length = 0
    while length < size:
        parts.append(rng.choice(words))
        length += len(parts[-1]) + 1
        if rng.random() < 0.02:
            parts.append(rng.choice(_ESCAPES))
        if rng.random() < 0.05:
            parts.append(".")
        if rng.random() < 0.02:
            parts.append(rng.choice(_BREAKS))
    return " ".join(parts)


def generate(path: Path, megabytes: int, seed_format: bool) -> None:
    """Writes about ``megabytes`` MB of realistic preference rows (Vertex or seed layout)."""
    rng = random.Random(0)
    plain = _corpus(rng, _ASCII_WORDS, 1 << 20)
    mixed = _corpus(rng, _ASCII_WORDS + _OTHER_WORDS * 3, 1 << 20)

    def text(source: str, low: int, high: int) -> str:
        length = rng.randint(low, high)
        start = rng.randrange(len(source) - length)
        return source[start : start + length]

    target = megabytes * 1024 * 1024
    prompts: list[str] = []
    with path.open("w", encoding="utf-8") as out:
        written = i = 0
        while written < target:
            source = mixed if rng.random() < 0.25 else plain
            if prompts and rng.random() < 0.05:
                prompt = rng.choice(prompts)
            else:
                prompt = text(source, 200, 2000) + f" #{i}"
                if len(prompts) < 10_000:
                    prompts.append(prompt)
            good, bad = text(source, 100, 1500), text(source, 100, 1500)
            row: dict[str, object]
            if seed_format:
                row = {"prompt": prompt, "chosen": good, "rejected": bad}
            else:
                row = {"input_text": prompt, "candidate_0": good, "candidate_1": bad}
                row["choice"] = i % 2
            line = json.dumps(row, ensure_ascii=False) + "\n"
            out.write(line)
            written += len(line.encode())
            i += 1


def _orjson_convert_loop(path: str, out: str) -> None:
    """The least a converter can do: parse, rename the fields, serialise, write."""
    import orjson

    with open(path, "rb") as src, open(out, "wb") as dst:
        for i, line in enumerate(src):
            row = orjson.loads(line)
            flip = i % 2
            pair = (row["chosen"], row["rejected"])
            new = {
                "input_text": row["prompt"],
                "candidate_0": pair[flip],
                "candidate_1": pair[1 - flip],
                "choice": flip,
            }
            dst.write(orjson.dumps(new) + b"\n")


def measure(mode: str, path: str, out: str) -> dict[str, float]:
    """Runs one mode in this process; returns seconds and peak RSS (MB)."""
    start = time.perf_counter()
    if mode == "json.loads loop":
        with open(path, "rb") as handle:
            for line in handle:
                json.loads(line)
    elif mode == "orjson loop":
        import orjson

        with open(path, "rb") as handle:
            for line in handle:
                orjson.loads(line)
    elif mode == "orjson convert loop":
        _orjson_convert_loop(path, out)
    elif mode == "validate (component)":
        from vertex_rlhf.data.rules import validate_dataset_files

        report = validate_dataset_files(path, "preference", 5)
        assert not report["errors"], report["problems"]
    elif mode == "validate":
        from vertex_rlhf.data.files import validate

        report = validate(path, "preference")
        assert not report["errors"], report["problems"]
    elif mode == "validate+profile":
        from vertex_rlhf.data.report import check_dataset

        check = check_dataset(path, "preference")
        # A tree before the dataset records (``--before``) returns (report, profile).
        report = check[0] if isinstance(check, tuple) else check.report()
        assert not report["errors"], report["problems"]
    elif mode == "validate, 1 process":  # what the forked reader is measured against
        from vertex_rlhf.data.files import validate

        report = validate(path, "preference", processes=1)
        assert not report["errors"], report["problems"]
    elif mode == "validate+profile, 1 pr":
        from vertex_rlhf.data import files
        from vertex_rlhf.data.profile import Profile

        found = Profile()
        report = files.validate(path, "preference", observe=lambda _: found, processes=1)
        assert not report["errors"], report["problems"]
    elif mode == "convert":
        from vertex_rlhf.data.convert import convert

        convert(path, out, "preference", force=True)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "peak_rss_mb": peak_rss_mb()}


def peak_rss_mb() -> float:
    """This process's peak RSS. VmHWM, since ru_maxrss survives exec on Linux and would
    report the parent's peak."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(
    mode: str, path: Path, out: Path | None = None, tree: str | None = None
) -> dict[str, float]:
    """Measures one mode in a fresh process; ``tree``: a source tree whose ``vertex_rlhf``
    it imports instead of this one's (first on ``PYTHONPATH``)."""
    env = dict(os.environ, PYTHONPATH=tree) if tree else None
    result = subprocess.run(
        [sys.executable, __file__, "--measure", mode, str(path), str(out or "")],
        capture_output=True,
        text=True,
        check=True,
        env=env,
        cwd=tempfile.gettempdir(),  # not this checkout: ``tree`` is the library imported
    )
    return dict(json.loads(result.stdout.splitlines()[-1]))


def best_runs(
    repeat: int, runs: list[tuple[str, str | None]], paths: dict[str, Path], out: Path
) -> dict[tuple[str, str | None], dict[str, float]]:
    """Each (mode, tree)'s fastest of ``repeat`` runs, with the highest peak RSS seen.

    The machine is shared, and noise only slows: each round runs every mode once, so
    that a busy minute slows one run of each rather than every run of one mode.
    """
    best: dict[tuple[str, str | None], dict[str, float]] = {}
    for _ in range(repeat):
        for mode, tree in runs:
            run = child(mode, paths[mode], out, tree)
            old = best.get((mode, tree))
            if old is None or run["seconds"] < old["seconds"]:
                best[mode, tree] = {
                    **run,
                    "peak_rss_mb": max(run["peak_rss_mb"], (old or run)["peak_rss_mb"]),
                }
            else:
                old["peak_rss_mb"] = max(old["peak_rss_mb"], run["peak_rss_mb"])
    return best


def bench_files(
    directory: Path,
    sizes: list[int],
    repeat: int = 3,
    modes: tuple[str, ...] = MODES,
    before: str | None = None,
) -> None:
    print(
        f"{'size':>8} {'mode':<22} {'MB/s':>8} {'vs json.loads':>14} {'vs orjson':>10}"
        f" {'peak RSS MB':>12}" + (f" {'before MB/s':>12} {'vs before':>10}" if before else "")
    )
    for size in sizes:
        vertex = directory / f"pref-{size}mb.jsonl"
        seed = directory / f"seed-{size}mb.jsonl"
        generate(vertex, size, seed_format=False)
        generate(seed, size, seed_format=True)
        paths = {mode: seed if "convert" in mode else vertex for mode in BASELINES + modes}
        runs: list[tuple[str, str | None]] = [(mode, None) for mode in BASELINES + modes]
        if before:
            runs += [(mode, before) for mode in modes]
        best = best_runs(repeat, runs, paths, directory / "converted.jsonl")

        def rate(
            mode: str, tree: str | None = None, paths: dict[str, Path] = paths, best: Any = best
        ) -> float:
            return paths[mode].stat().st_size / 1024 / 1024 / best[mode, tree]["seconds"]

        for mode in BASELINES + modes:
            # conversion is compared with the minimal orjson conversion loop
            orjson_base = rate("orjson convert loop" if "convert" in mode else "orjson loop")
            line = (
                f"{size:>6}MB {mode:<22} {rate(mode):>8.1f}"
                f" {rate(mode) / rate('json.loads loop'):>13.2f}x"
                f" {rate(mode) / orjson_base:>9.2f}x {best[mode, None]['peak_rss_mb']:>12.1f}"
            )
            if before and mode in modes:
                line += f" {rate(mode, before):>12.1f} {rate(mode) / rate(mode, before):>9.2f}x"
            print(line, flush=True)
        for path in (vertex, seed, directory / "converted.jsonl"):
            path.unlink(missing_ok=True)


def bench_compile(runs: int = 7) -> None:
    """Wall time of a no-op ``rlhf compile`` (nothing changed), the median of ``runs``."""
    rlhf = Path(sys.executable).with_name("rlhf")
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([str(rlhf), "compile"], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    print(f"\nno-op `rlhf compile`: median {statistics.median(times):.3f} s over {runs} runs")


# The emulator in its own process. Its stock server handles one request at a time and is
# CPU-bound here; like Cloud Storage, this one serves requests concurrently, and each
# request first waits a network round trip (--rtt-ms), which is what shard concurrency hides.
EMULATOR = """
import http.server, sys, time
http.server.HTTPServer = http.server.ThreadingHTTPServer
_handle = http.server.BaseHTTPRequestHandler.handle_one_request
def _with_rtt(self):
    time.sleep(float(sys.argv[2]) / 1000)
    return _handle(self)
http.server.BaseHTTPRequestHandler.handle_one_request = _with_rtt
from gcp_storage_emulator.server import create_server
create_server("127.0.0.1", int(sys.argv[1]), in_memory=True).start()
time.sleep(3600)
"""


def bench_gcs(directory: Path, shards: int, shard_mb: int, rtt_ms: float) -> None:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    emulator = subprocess.Popen(
        [sys.executable, "-c", EMULATOR, str(port), str(rtt_ms)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.environ["STORAGE_EMULATOR_HOST"] = f"http://127.0.0.1:{port}"
    for _ in range(100):
        with socket.socket() as ready:
            if ready.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    try:
        from vertex_rlhf.data.files import storage_client, validate

        bucket = storage_client().create_bucket("bench-shards")
        shard = directory / "shard.jsonl"
        generate(shard, shard_mb, seed_format=False)
        for i in range(shards):
            bucket.blob(f"pref/part-{i:03d}.jsonl").upload_from_filename(str(shard))
        total = shards * shard.stat().st_size / 1024 / 1024
        print(
            f"\ngs:// through gcp-storage-emulator: {shards} shards, {total:.0f} MB,"
            f" {rtt_ms:g} ms per request"
        )
        for workers in (1, shards):
            start = time.perf_counter()
            report = validate("gs://bench-shards/pref/*.jsonl", "preference", workers=workers)
            seconds = time.perf_counter() - start
            assert not report["errors"]
            label = "one by one" if workers == 1 else f"{workers} at once"
            print(f"  {label:<12} {total / seconds:8.1f} MB/s  ({seconds:.2f} s)")
    finally:
        emulator.kill()


def main() -> None:
    if sys.argv[1:2] == ["--measure"]:
        mode, path, out = sys.argv[2], sys.argv[3], sys.argv[4]
        print(json.dumps(measure(mode, path, out)))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000], help="MB")
    parser.add_argument("--dir", help="where to write the generated files (default: a temp dir)")
    parser.add_argument("--shards", type=int, default=16, help="gs:// shards")
    parser.add_argument("--shard-mb", type=int, default=4, help="MB per gs:// shard")
    parser.add_argument("--rtt-ms", type=float, default=30.0, help="emulated round trip")
    parser.add_argument("--repeat", type=int, default=3, help="runs per mode; the fastest counts")
    parser.add_argument(
        "--modes", nargs="+", choices=MODES, default=list(MODES), help="modes to measure"
    )
    parser.add_argument("--no-gcs", action="store_true", help="skip the gs:// shard benchmark")
    parser.add_argument(
        "--before", help="a source tree (e.g. a git worktree) to measure in the same rounds"
    )
    parser.add_argument("--no-compile", action="store_true", help="skip the no-op compile timing")
    args = parser.parse_args()
    # An installed package has its bytecode compiled (pip does it); a source checkout
    # under PYTHONDONTWRITEBYTECODE=1 would recompile ours in every measured process.
    compileall.compile_dir(str(Path(__file__).parents[1] / "vertex_rlhf"), quiet=1)
    directory = Path(args.dir or tempfile.mkdtemp(prefix="rlhf-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import orjson

        print(f"parser: orjson {orjson.__version__}; baseline: stdlib json.loads per line")
    except ImportError:
        print("parser: stdlib json (orjson not installed)")
    try:
        before = str(Path(args.before).resolve()) if args.before else None
        bench_files(directory, args.sizes, args.repeat, tuple(args.modes), before)
        if not args.no_compile:
            bench_compile()
        if not args.no_gcs:
            bench_gcs(directory, args.shards, args.shard_mb, args.rtt_ms)
    finally:
        if not args.dir:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
