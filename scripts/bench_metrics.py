"""Benchmark reading TensorBoard event files from Cloud Storage: time and peak memory.

    python scripts/bench_metrics.py [--mb 1 4 16] [--log] [--before TREE]

Writes one event file of about ``--mb`` MB of scalars (TensorBoard's own writer), puts it
in gcp-storage-emulator on 127.0.0.1 (started here), and reads it, in a fresh process, the
way ``rlhf metrics`` does (``EventFiles.changed_points``; with ``--log``, then into
the JSONL log's records too). Prints the points read, the wall
time, the peak resident memory (``VmHWM``) and that peak less the process's peak before
the read, per MB of event file. ``--before TREE`` (e.g. a ``git worktree`` of the
previous commit) runs the same with that tree's ``vertex_rlhf`` first on ``PYTHONPATH``.
Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

# The peak is VmHWM (ru_maxrss survives exec: a child would report its parent's peak).
READ = """
import sys, time
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
from vertex_rlhf.cloud.metrics import EventFiles, MetricSource
import tensorboard.compat.proto.event_pb2, google.cloud.storage  # imports outside the peak
base = hwm()
start = time.perf_counter()
with EventFiles() as files:
    points = files.changed_points(MetricSource("reward_model", "t", sys.argv[1], True))
if len(sys.argv) > 2:  # and into the JSONL log, as `rlhf metrics` does
    import json, tempfile
    from pathlib import Path
    from vertex_rlhf.cloud import metrics
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "m.jsonl"
        records = metrics.new_records("job", points, metrics.logged_points(metrics.read_log(log)))
        log.write_text("".join(json.dumps(r, sort_keys=True) + "\\n" for r in records))
seconds = time.perf_counter() - start
peak = hwm()
print(len(points), seconds, peak, peak - base)
"""


def event_file(folder: Path, megabytes: float) -> Path:
    """An event file of about ``megabytes`` MB: scalars of four tags per step."""
    from tensorboard.summary import Writer

    writer = Writer(str(folder))
    step = 0
    tags = ("rank_loss", "accuracy", "reward", "kl_loss")
    # about 75 bytes an event; check the size now and then
    while True:
        for _ in range(2000):
            for tag in tags:
                writer.add_scalar(tag, 1.0 / (step + 1), step, wall_time=1_800_000_000 + step)
            step += 1
        writer.flush()
        (path,) = folder.iterdir()
        if path.stat().st_size >= megabytes * 1e6:
            writer.close()
            return path


def serve() -> tuple[object, str]:
    from gcp_storage_emulator.server import create_server

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    return server, f"http://127.0.0.1:{port}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=float, nargs="+", default=[1.0, 4.0, 16.0])
    parser.add_argument("--before", help="a tree whose vertex_rlhf to compare with")
    parser.add_argument("--log", action="store_true", help="also turn the points into log records")
    args = parser.parse_args()
    server, host = serve()
    os.environ["STORAGE_EMULATOR_HOST"] = host
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage  # type: ignore[attr-defined]

    client = storage.Client(project="bench", credentials=AnonymousCredentials())
    bucket = client.create_bucket(f"bench-{uuid.uuid4().hex[:10]}")
    trees = [("before", args.before), ("after", str(Path(__file__).resolve().parents[1]))]
    print(f"{'tree':<7} {'MB':>6} {'points':>9} {'seconds':>8} {'peak MB':>8} {'MB/MB':>6}")
    try:
        for megabytes in args.mb:
            with tempfile.TemporaryDirectory() as scratch:
                local = event_file(Path(scratch), megabytes)
                size = local.stat().st_size / 1e6
                bucket.blob(f"m{megabytes}/events/{local.name}").upload_from_filename(local)
            uri = f"gs://{bucket.name}/m{megabytes}/events"
            for label, tree in trees:
                if tree is None:
                    continue
                env = {**os.environ, "PYTHONPATH": tree}
                done = subprocess.run(
                    [sys.executable, "-c", READ, uri, *(["log"] if args.log else [])],
                    env=env,
                    capture_output=True,
                    text=True,
                    cwd=tempfile.gettempdir(),
                )
                if done.returncode:
                    print(f"{label:<7} {size:>6.1f} failed: {done.stderr.strip()[-300:]}")
                    continue
                points, seconds, peak, grown = done.stdout.split()[-4:]
                print(
                    f"{label:<7} {size:>6.1f} {int(points):>9} {float(seconds):>8.2f}"
                    f" {float(peak):>8.0f} {float(grown) / size:>6.1f}"
                )
    finally:
        server.stop()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main()
