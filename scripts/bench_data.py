"""Benchmark dataset validation and conversion: MB/s and peak RSS, against a json.loads loop.

    python scripts/bench_data.py [--sizes 100 1000] [--dir DIR] [--shards 8]

Each measurement runs in its own process, so its peak RSS is its own. Prints a table;
asserts nothing (the machines are noisy): read the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MODES = ("json.loads loop", "validate", "validate+profile", "convert")


def generate(path: Path, megabytes: int, seed_format: bool) -> None:
    """Writes about ``megabytes`` MB of preference rows (Vertex or prompt/chosen/rejected)."""
    rng = random.Random(0)
    words = [f"w{i}" for i in range(5000)]
    target = megabytes * 1024 * 1024
    with path.open("w", encoding="utf-8") as out:
        written = i = 0
        while written < target:
            prompt = " ".join(rng.choices(words, k=rng.randint(40, 120))) + f" #{i}"
            good = " ".join(rng.choices(words, k=rng.randint(5, 30)))
            bad = " ".join(rng.choices(words, k=rng.randint(5, 30)))
            row: dict[str, object]
            if seed_format:
                row = {"prompt": prompt, "chosen": good, "rejected": bad}
            else:
                row = {
                    "input_text": prompt,
                    "candidate_0": good,
                    "candidate_1": bad,
                    "choice": i % 2,
                }
            line = json.dumps(row) + "\n"
            out.write(line)
            written += len(line)
            i += 1


def measure(mode: str, path: str, out: str) -> dict[str, float]:
    """Runs one mode in this process; returns seconds and peak RSS (MB)."""
    start = time.perf_counter()
    if mode == "json.loads loop":
        with open(path, "rb") as handle:
            for line in handle:
                json.loads(line)
    elif mode == "validate":
        from vertex_rlhf.data.files import validate

        report = validate(path, "preference")
        assert not report["errors"], report["problems"]
    elif mode == "validate+profile":
        from vertex_rlhf.data.report import check_dataset

        report, _ = check_dataset(path, "preference")
        assert not report["errors"], report["problems"]
    elif mode == "convert":
        from vertex_rlhf.data.convert import convert

        convert(path, out, "preference", force=True)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"seconds": seconds, "peak_rss_mb": peak_mb}


def child(mode: str, path: Path, out: Path | None = None) -> dict[str, float]:
    result = subprocess.run(
        [sys.executable, __file__, "--measure", mode, str(path), str(out or "")],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(result.stdout.splitlines()[-1]))


def bench_files(directory: Path, sizes: list[int]) -> None:
    print(f"{'size':>8} {'mode':<18} {'MB/s':>8} {'vs json.loads':>14} {'peak RSS MB':>12}")
    for size in sizes:
        vertex = directory / f"pref-{size}mb.jsonl"
        seed = directory / f"seed-{size}mb.jsonl"
        generate(vertex, size, seed_format=False)
        generate(seed, size, seed_format=True)
        megabytes = vertex.stat().st_size / 1024 / 1024
        baseline = 0.0
        for mode in MODES:
            source = seed if mode == "convert" else vertex
            numbers = child(mode, source, directory / "converted.jsonl")
            rate = megabytes / numbers["seconds"]
            baseline = baseline or rate
            print(
                f"{size:>6}MB {mode:<18} {rate:>8.1f} {rate / baseline:>13.2f}x"
                f" {numbers['peak_rss_mb']:>12.1f}"
            )
        for path in (vertex, seed, directory / "converted.jsonl"):
            path.unlink(missing_ok=True)


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
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 1000], help="MB")
    parser.add_argument("--dir", help="where to write the generated files (default: a temp dir)")
    parser.add_argument("--shards", type=int, default=16, help="gs:// shards")
    parser.add_argument("--shard-mb", type=int, default=4, help="MB per gs:// shard")
    parser.add_argument("--rtt-ms", type=float, default=30.0, help="emulated round trip")
    args = parser.parse_args()
    directory = Path(args.dir or tempfile.mkdtemp(prefix="rlhf-bench-"))
    directory.mkdir(parents=True, exist_ok=True)
    try:
        import orjson

        print(f"parser: orjson {orjson.__version__}; baseline: stdlib json.loads per line")
    except ImportError:
        print("parser: stdlib json (orjson not installed)")
    try:
        bench_files(directory, args.sizes)
        bench_gcs(directory, args.shards, args.shard_mb, args.rtt_ms)
    finally:
        if not args.dir:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    main()
