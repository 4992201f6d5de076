"""convert-data's output guarantees: nothing partial, nothing lost, pairs never mixed.

Kills are real: the CLI runs as a subprocess (``python -m vertex_rlhf convert-data``) and
gets SIGTERM / SIGINT / SIGKILL once its output has begun. Cloud Storage is
gcp-storage-emulator, driven by the real google-cloud-storage client.
"""

from __future__ import annotations

import gc
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import default_signals, write_jsonl
from vertex_rlhf.data import files as dataset_io
from vertex_rlhf.data.convert import convert
from vertex_rlhf.errors import ConfigError, DataError

ROWS = 200_000  # ~0.5 s of conversion: a kill right after the output begins lands mid-run


def seed_lines(n: int, tag: str = "") -> bytes:
    """``n`` valid prompt/chosen/rejected rows as JSONL bytes, fast."""
    return b"".join(
        b'{"prompt": "prompt %d%s", "chosen": "good %d", "rejected": "bad %d"}\n'
        % (i, tag.encode(), i, i)
        for i in range(n)
    )


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Starts the real CLI as a subprocess."""
    return subprocess.Popen(
        [sys.executable, "-m", "vertex_rlhf", "convert-data", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, **(env or {})},
        preexec_fn=default_signals,  # signalled even when the suite runs under nohup
    )


def wait_for(condition: Callable[[], bool], process: subprocess.Popen[bytes]) -> None:
    """Polls until ``condition`` holds; fails if the process ends first or 20 s pass."""
    deadline = time.monotonic() + 20
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


def temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if ".tmp-" in p.name)


def output_begun(directory: Path) -> Callable[[], bool]:
    """True once a new temporary output holds bytes (the conversion loop is running)."""
    before = set(temporaries(directory)) if directory.exists() else set()

    def check() -> bool:
        for p in directory.iterdir():
            try:
                if ".tmp-" in p.name and p.name not in before and p.stat().st_size > 0:
                    return True
            except FileNotFoundError:
                pass
        return False

    return check


@pytest.fixture
def bucket(storage_emulator: str) -> Any:
    return dataset_io.storage_client().create_bucket(f"rlhf-conv-{uuid.uuid4().hex[:10]}")


def object_names(bucket: Any, prefix: str = "") -> list[str]:
    return sorted(b.name for b in bucket.client.list_blobs(bucket, prefix=prefix))


# ---- Cloud Storage: no partial object, even once the garbage collector has run ----


@pytest.mark.parametrize("rows", [40, 150_000])  # under one 8 MB upload chunk, and over
def test_a_failed_gs_upload_leaves_no_object_after_gc(
    bucket: Any, tmp_path: Path, rows: int
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", seed_lines(rows) + b'{"prompt": "x"}\n')
    with pytest.raises(DataError, match=rf"in\.jsonl:{rows + 1}: chosen"):
        convert(str(source), f"gs://{bucket.name}/vertex/never.jsonl", "preference")
    gc.collect()  # an abandoned BlobWriter finalises its upload here
    assert object_names(bucket) == []


def test_a_failed_gs_rerun_keeps_the_previous_object(bucket: Any, tmp_path: Path) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", seed_lines(10))
    target = f"gs://{bucket.name}/vertex/out.jsonl"
    convert(str(good), target, "preference")
    before = bucket.blob("vertex/out.jsonl").download_as_bytes()
    bad = write_jsonl(tmp_path / "bad.jsonl", seed_lines(30) + b"{broken\n")
    with pytest.raises(DataError):
        convert(str(bad), target, "preference", force=True)
    gc.collect()
    assert object_names(bucket) == ["vertex/out.jsonl"]
    assert bucket.blob("vertex/out.jsonl").download_as_bytes() == before


def test_ctrl_c_during_a_gs_upload_leaves_nothing(bucket: Any, tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(seed_lines(ROWS))
    # The eval split goes to a local file: its temporary shows when the loop has begun.
    process = cli(
        str(source),
        f"gs://{bucket.name}/vertex/train.jsonl",
        "--kind=preference",
        f"--eval-out={tmp_path / 'eval.jsonl'}",
        "--eval-fraction=0.5",
    )
    wait_for(output_begun(tmp_path), process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=20)
    assert process.returncode == 130, err
    assert b"Traceback" not in err
    gc.collect()
    assert object_names(bucket) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_a_stale_gs_temporary_of_a_dead_process_is_removed(bucket: Any, tmp_path: Path) -> None:
    from vertex_rlhf.data import outputs

    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    dead_pid = int(dead.stdout)
    stale = outputs.temporary_name("vertex/out.jsonl", pid=dead_pid)
    live = outputs.temporary_name("vertex/out.jsonl", pid=os.getppid())
    other_host = stale.replace(outputs.HOST, "otherhost")
    for name in (stale, live, other_host):
        bucket.blob(name).upload_from_string(b"partial")
    convert(
        str(write_jsonl(tmp_path / "in.jsonl", seed_lines(3))),
        f"gs://{bucket.name}/vertex/out.jsonl",
        "preference",
    )
    assert object_names(bucket) == sorted(["vertex/out.jsonl", live, other_host])


# ---- Local files: kills leave no temporaries behind ----


@pytest.mark.parametrize(
    "signum, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]
)
def test_a_killed_local_conversion_cleans_up(tmp_path: Path, signum: int, status: int) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(seed_lines(ROWS))
    out = tmp_path / "out"
    out.mkdir()
    process = cli(
        str(source),
        str(out / "train.jsonl"),
        "--kind=preference",
        f"--eval-out={out / 'eval.jsonl'}",
        "--eval-fraction=0.1",
        "--skip-invalid",
    )
    wait_for(output_begun(out), process)
    process.send_signal(signum)
    _, err = process.communicate(timeout=20)
    assert process.returncode == status, err
    assert b"Traceback" not in err
    assert list(out.iterdir()) == []  # no temporary, no output


def test_sigkill_leaves_temporaries_that_the_next_run_removes(tmp_path: Path) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(seed_lines(ROWS))
    args = [
        str(source),
        str(tmp_path / "train.jsonl"),
        "--kind=preference",
        f"--eval-out={tmp_path / 'eval.jsonl'}",
        "--eval-fraction=0.1",
    ]

    def killed_run() -> list[str]:
        process = cli(*args)
        wait_for(output_begun(tmp_path), process)
        process.kill()
        process.communicate(timeout=20)
        assert process.returncode == -signal.SIGKILL
        return temporaries(tmp_path)

    first = killed_run()
    assert len(first) == 2  # train and eval: SIGKILL cannot be caught
    # A temporary of a live process (this one's parent) is never touched.
    live = tmp_path / f".train.jsonl.tmp-{os.getppid()}"
    live.write_bytes(b"someone else's")
    second = killed_run()
    assert len(second) == 3 and not set(first) & set(second)  # the dead run's are gone
    process = cli(*args)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert temporaries(tmp_path) == [live.name]
    assert sorted(p.name for p in tmp_path.iterdir() if p != live) == [
        "eval.jsonl",
        "in.jsonl",
        "train.jsonl",
    ]


def test_legacy_temporaries_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True
    )
    (tmp_path / f".out.jsonl.tmp-{int(dead.stdout)}").write_bytes(b"left by 1.0.0")
    (tmp_path / ".unrelated.jsonl.tmp-1").write_bytes(b"not ours to judge")
    convert(
        str(write_jsonl(tmp_path / "in.jsonl", seed_lines(3))),
        str(tmp_path / "out.jsonl"),
        "preference",
    )
    assert temporaries(tmp_path) == [".unrelated.jsonl.tmp-1"]


# ---- The same file spelled two ways is still the same file ----


def spellings(tmp_path: Path) -> list[str]:
    """Other names of ``tmp_path/a/in.jsonl``, relative to ``tmp_path/b``."""
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "link.jsonl").symlink_to(tmp_path / "a" / "in.jsonl")
    os.link(tmp_path / "a" / "in.jsonl", tmp_path / "b" / "hard.jsonl")
    return [
        "../a/in.jsonl",
        str(tmp_path / "a" / "in.jsonl"),
        f"{tmp_path}/b/../a/./in.jsonl",
        f"{tmp_path}//a//in.jsonl",
        "link.jsonl",
        "hard.jsonl",
    ]


@pytest.mark.parametrize("role", ["output", "eval_output", "rejects"])
def test_force_never_overwrites_an_input_spelled_another_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, role: str
) -> None:
    source = write_jsonl(tmp_path / "a" / "in.jsonl", seed_lines(20))
    before = source.read_bytes()
    for spelling in spellings(tmp_path):
        monkeypatch.chdir(tmp_path / "b")
        paths = {"output": "train.jsonl", "eval_output": "eval.jsonl", "rejects": "rej.jsonl"}
        paths[role] = spelling
        with pytest.raises(ConfigError, match="same file") as error:
            convert(
                str(source),
                paths["output"],
                "preference",
                eval_output=paths["eval_output"],
                eval_fraction=0.5,
                force=True,
                skip_invalid=True,
                rejects=paths["rejects"],
            )
        assert spelling in str(error.value)
        assert source.read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["hard.jsonl", "link.jsonl"]


def test_outputs_spelled_two_ways_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", seed_lines(20))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="same file"):
        convert(
            str(source),
            "out.jsonl",
            "preference",
            eval_output=f"{tmp_path}/out.jsonl",
            eval_fraction=0.5,
        )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


@pytest.mark.parametrize(
    "spelling",
    ["raw/in.jsonl", "raw//in.jsonl", "raw/./in.jsonl", "x/../raw/in.jsonl", "/raw/in.jsonl"],
)
def test_force_never_overwrites_a_gs_input_spelled_another_way(bucket: Any, spelling: str) -> None:
    bucket.blob("raw/in.jsonl").upload_from_string(seed_lines(20))
    source = f"gs://{bucket.name}/raw/*.jsonl"
    with pytest.raises(ConfigError, match=r"same file|Cloud Storage"):
        convert(source, f"gs://{bucket.name}/{spelling}", "preference", force=True)
    gc.collect()
    assert object_names(bucket) == ["raw/in.jsonl"]
    assert bucket.blob("raw/in.jsonl").download_as_bytes() == seed_lines(20)


def test_the_cloud_storage_mount_names_the_same_objects() -> None:
    from vertex_rlhf.data.outputs import identity

    assert identity("/gcs/bucket/a/in.jsonl") == identity("gs://bucket/a/in.jsonl")
    assert identity("/gcs/bucket/a/../a/in.jsonl") == identity("gs://bucket/a//in.jsonl")
    assert identity("gs://bucket/a/in.jsonl") != identity("gs://bucket/b/in.jsonl")
    assert identity("gs://bucket/a/in.jsonl") != identity("gs://other/a/in.jsonl")


@pytest.mark.parametrize("name", ["Bucket/x.jsonl", "b/x.jsonl", "bucket", "bucket/", "bucket/d/"])
def test_odd_gs_output_names_are_refused(tmp_path: Path, name: str) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", seed_lines(3))
    with pytest.raises(ConfigError, match=r"bucket name|Cloud Storage names are literal"):
        convert(str(source), f"gs://{name}", "preference")


@pytest.mark.parametrize(
    "target, problem",
    [("dir", "is a directory"), ("file.txt/out.jsonl", "is not a directory")],
)
def test_an_output_that_cannot_be_a_file_is_a_coded_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], target: str, problem: str
) -> None:
    from vertex_rlhf import cli as rlhf

    source = write_jsonl(tmp_path / "in.jsonl", seed_lines(3))
    (tmp_path / "dir").mkdir()
    (tmp_path / "file.txt").write_text("keep")
    argv = ["convert-data", str(source), str(tmp_path / target), "--kind=preference", "--force"]
    assert rlhf.main(argv) == 12
    assert problem in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "file.txt", "in.jsonl"]
    assert list((tmp_path / "dir").iterdir()) == []


def test_a_missing_bucket_is_a_coded_error_before_any_row(
    storage_emulator: str, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", seed_lines(3))
    missing = f"gs://rlhf-missing-{uuid.uuid4().hex[:10]}/out.jsonl"
    with pytest.raises(ConfigError, match=r"bucket .* does not exist"):
        convert(str(source), missing, "preference")


# ---- A train/eval pair is never mixed across runs ----

# Runs the CLI and sends it KILL_SIGNAL just before its KILL_AT-th rename, replace or unlink.
KILL_AT = """
import os, runpy, signal, sys
limit, calls = int(os.environ["KILL_AT"]), [0]
def wrap(real):
    def call(*args, **kwargs):
        calls[0] += 1
        if calls[0] == limit:
            os.kill(os.getpid(), int(os.environ["KILL_SIGNAL"]))
        return real(*args, **kwargs)
    return call
for name in ("replace", "rename", "unlink", "remove"):
    setattr(os, name, wrap(getattr(os, name)))
sys.argv = ["rlhf", *sys.argv[1:]]
runpy.run_module("vertex_rlhf", run_name="__main__")
"""
NAMES = ("train.jsonl", "eval.jsonl", "rejects.jsonl")


class TwoRuns:
    """An old and a new conversion to the same train, eval and rejects outputs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.work = root / "work"
        self.outputs = {}
        for run in ("old", "new"):
            (root / run).mkdir()
            assert self.run(run, root / run) == 0
            self.outputs[run] = {n: (root / run / n).read_bytes() for n in NAMES}
        assert all(self.outputs["old"][n] != self.outputs["new"][n] for n in NAMES)

    def args(self, run: str, where: Path) -> list[str]:
        # Each run has its own input (a bad row at its own line) and seed: its train,
        # eval and rejects outputs all differ from the other run's.
        source = self.root / f"{run}.jsonl"
        if not source.exists():
            rows = seed_lines(2000, tag=run).splitlines(keepends=True)
            rows.insert(len(run), b'{"prompt": "no answers"}\n')
            source.write_bytes(b"".join(rows))
        return [
            str(source),
            str(where / "train.jsonl"),
            "--kind=preference",
            f"--seed={len(run)}",
            f"--eval-out={where / 'eval.jsonl'}",
            "--eval-fraction=0.3",
            "--skip-invalid",
            f"--rejects={where / 'rejects.jsonl'}",
            "--force",
        ]

    def run(self, run: str, where: Path, kill_at: int = 0, signum: int = 0) -> int:
        start = ["-c", KILL_AT] if kill_at else ["-m", "vertex_rlhf"]
        env = {**os.environ, "KILL_AT": str(kill_at), "KILL_SIGNAL": str(signum)}
        argv = [sys.executable, *start, "convert-data", *self.args(run, where)]
        done = subprocess.run(argv, env=env, capture_output=True, preexec_fn=default_signals)
        return done.returncode

    def reset(self) -> None:
        """The work directory holds the old run's complete outputs."""
        if self.work.exists():
            for p in self.work.iterdir():
                p.unlink()
        self.work.mkdir(exist_ok=True)
        for n in NAMES:
            (self.work / n).write_bytes(self.outputs["old"][n])

    def present(self) -> tuple[set[str], bool]:
        """Which runs the outputs present come from, and whether all three are there."""
        found = set()
        for n in NAMES:
            if (self.work / n).exists():
                data = (self.work / n).read_bytes()
                found |= {r for r in ("old", "new") if self.outputs[r][n] == data}
        return found, all((self.work / n).exists() for n in NAMES)


def test_a_kill_at_any_step_never_mixes_the_outputs_of_two_runs(tmp_path: Path) -> None:
    runs = TwoRuns(tmp_path)
    seen = {}
    for kill_at in range(1, 40):
        runs.reset()
        status = runs.run("new", runs.work, kill_at, signal.SIGKILL)
        present, complete = runs.present()
        assert len(present) == 1, f"a kill at step {kill_at} mixed two runs or lost both"
        if status == 0:
            assert present == {"new"} and complete and temporaries(runs.work) == []
            break
        assert status == -signal.SIGKILL
        seen[kill_at] = (present, complete)
    else:
        pytest.fail("the conversion never completed")
    # Kills landed before publishing, and between the renames (detectably incomplete).
    assert ({"old"}, True) in seen.values() and ({"new"}, False) in seen.values()
    # The next run repairs what a kill between the renames left.
    between = next(k for k, state in seen.items() if state == ({"new"}, False))
    runs.reset()
    assert runs.run("new", runs.work, between, signal.SIGKILL) == -signal.SIGKILL
    assert runs.run("new", runs.work) == 0
    assert runs.present() == ({"new"}, True) and temporaries(runs.work) == []


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_while_publishing_waits_until_the_outputs_are_complete(
    tmp_path: Path, signum: int
) -> None:
    runs = TwoRuns(tmp_path)
    for kill_at in range(1, 40):
        runs.reset()
        status = runs.run("new", runs.work, kill_at, signum)
        assert runs.present() == ({"new"}, True), f"a signal at step {kill_at}"
        assert temporaries(runs.work) == []
        if status == 0:
            assert kill_at > 1
            break
        assert status == (130 if signum == signal.SIGINT else 128 + signum)
    else:
        pytest.fail("the conversion never completed")
