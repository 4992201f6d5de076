"""Event files are read record by record: damaged framing is a coded error, never an
allocation of what a header announces; a file still being written ends at its last whole
record; nothing is left on disk, even when the read is stopped by a signal."""

from __future__ import annotations

import os
import signal
import struct
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TEST_PROJECT, default_signals
from tests.standins import training
from tests.standins.faulty_storage import Answer, FaultyStorage, Request
from tests.standins.vertex import VertexStandIn
from vertex_rlhf import cli
from vertex_rlhf.cloud import metrics

PARENT = f"projects/{TEST_PROJECT}/locations/us-central1/pipelineJobs"
LOSS = [(step, round(1.0 - 0.01 * step, 4)) for step in range(50)]


def record(data: bytes) -> bytes:
    """One TFRecord: length, its masked CRC, the data, its masked CRC."""
    length = struct.pack("<Q", len(data))
    return (
        length
        + struct.pack("<I", metrics.masked_crc32c(length))
        + data
        + struct.pack("<I", metrics.masked_crc32c(data))
    )


def announcing(length: int) -> bytes:
    """A header with a valid checksum announcing ``length`` bytes, and nothing after it."""
    head = struct.pack("<Q", length)
    return head + struct.pack("<I", metrics.masked_crc32c(head))


def flip(data: bytes, at: int) -> bytes:
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


# name -> (change to the event file's bytes, expected error words or None, points kept)
Damage = Callable[[bytes], bytes]
CASES: dict[str, tuple[Damage, str | None, int]] = {
    "whole": (lambda b: b, None, 50),
    "last record cut short (still being written)": (lambda b: b[:-7], None, 49),
    "a header cut short": (lambda b: b + announcing(10)[:5], None, 50),
    "a record that is not an event": (lambda b: b + record(b"\xff\xfe not a proto"), None, 50),
    "a header announcing 1 TiB": (
        lambda b: b + announcing(1 << 40),
        "announces 1,099,511,627,776 bytes",
        0,
    ),
    "a length that fails its checksum": (
        lambda b: b + flip(announcing(64), 9) + b"x" * 68,
        "its length fails its checksum",
        0,
    ),
    "data that fails its checksum": (
        lambda b: flip(b, len(b) - 10),
        "its data fails its checksum",
        0,
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.usefixtures("project_env", "storage_emulator")
def test_event_file_framing(
    vertex: VertexStandIn, tmp_path: Path, capsys: pytest.CaptureFixture[str], case: str
) -> None:
    damage, expected, kept = CASES[case]
    job = f"e-{uuid.uuid4().hex[:8]}"
    timeline, uris = training.run_timeline(0.0036, f"rlhf-ev-{uuid.uuid4().hex[:10]}", job)
    vertex.add_job(f"{PARENT}/{job}", timeline)
    local = training.write_events(tmp_path / "rm", {"loss": LOSS})
    local.write_bytes(damage(local.read_bytes()))
    uri = f"{uris['reward-model-trainer']}/{local.name}"
    training.upload(local, uri)
    log = tmp_path / "runs" / "e.jsonl"
    args = ["metrics", job, "--env", "dev", f"vertex_ai.api_endpoint={vertex.url}"]
    status = cli.main([*args, "--metrics-log", str(log), "--png", str(tmp_path / "e.png")])
    err = capsys.readouterr().err
    if expected is None:
        assert status == 0, err
        assert len(metrics.read_log(log)) == kept
        return
    assert status == 15
    assert f"error[DATA_005]: {uri}: the event record at byte " in err and expected in err
    assert "Traceback" not in err and not log.exists()


@pytest.mark.usefixtures("project_env")
def test_a_signal_during_the_read_leaves_nothing_on_disk(
    storage_emulator: str, vertex: VertexStandIn, tmp_path: Path
) -> None:
    job = f"s-{uuid.uuid4().hex[:8]}"
    timeline, uris = training.run_timeline(0.0036, f"rlhf-sig-{uuid.uuid4().hex[:10]}", job)
    vertex.add_job(f"{PARENT}/{job}", timeline)
    steps = [(step, 0.5) for step in range(20_000)]
    training.publish_events(tmp_path / "rm", uris["reward-model-trainer"], {"loss": steps})
    reading = threading.Event()

    def slow(request: Request) -> Answer | None:
        if request.is_media_read:
            reading.set()
            time.sleep(0.5)
        return None

    proxy = FaultyStorage(storage_emulator, before=slow).start()
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    try:
        args = ["metrics", job, "--env", "dev", f"vertex_ai.api_endpoint={vertex.url}"]
        process = subprocess.Popen(
            [sys.executable, "-m", "vertex_rlhf", *args, "--metrics-log", "runs/s.jsonl"],
            cwd=tmp_path,
            env={
                **os.environ,
                "GOOGLE_CLOUD_PROJECT": TEST_PROJECT,
                "STORAGE_EMULATOR_HOST": proxy.url,
                "TMPDIR": str(scratch),
            },
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            preexec_fn=default_signals,
        )
        assert reading.wait(60), process.communicate()
        time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
        assert process.returncode in (-signal.SIGTERM, 128 + signal.SIGTERM)
    finally:
        proxy.stop()
    assert list(scratch.iterdir()) == []
    assert not (tmp_path / "runs" / "s.jsonl").exists()
