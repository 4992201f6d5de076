"""A Cloud Storage read that ends early is never a smaller dataset.

The storage emulator sits behind a proxy that cuts range reads short, answers an empty
``206`` or a ``416`` before the object's end, names another generation, or loses the
object, from the third range on. ``validate-data`` and ``convert-data`` (the real CLI,
the real google-cloud-storage client) either read every byte or stop with a coded error
naming the object; they never report or write fewer rows.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.standins.faulty_storage import Answer, FaultyStorage, Request, error_answer
from vertex_rlhf import cli
from vertex_rlhf.data import files

ROWS = 40_000
CHUNK = 64 << 10  # bytes per range here, so a small object takes many ranges
CUT = 2 * CHUNK  # faults start with the third range


def prompts(n: int) -> bytes:
    return b"".join(b'{"input_text": "prompt %d of the dataset"}\n' % i for i in range(n))


def rows(n: int) -> bytes:
    return b"".join(
        b'{"prompt": "p %d", "chosen": "good %d", "rejected": "bad %d"}\n' % (i, i, i)
        for i in range(n)
    )


def _late(request: Request) -> bool:
    return request.is_media_read and (request.range_start or 0) >= CUT


def cut_short(request: Request, answer: Answer) -> Answer:
    if _late(request) and answer.status == 206:
        return Answer(206, answer.headers, answer.body[: max(1, len(answer.body) // 3)])
    return answer


class EmptyOnce:
    """One empty 206 at the cut, then the true answers."""

    def __init__(self) -> None:
        self.done = False

    def __call__(self, request: Request, answer: Answer) -> Answer:
        if _late(request) and not self.done:
            self.done = True
            return Answer(206, answer.headers, b"")
        return answer


def empty_206(request: Request, answer: Answer) -> Answer:
    return Answer(206, answer.headers, b"") if _late(request) else answer


def range_416(request: Request, answer: Answer) -> Answer:
    if _late(request):
        return error_answer(416, "The requested range cannot be satisfied.")
    return answer


def generation_changed(request: Request, answer: Answer) -> Answer:
    if _late(request):
        return Answer(answer.status, {**answer.headers, "x-goog-generation": "99"}, answer.body)
    return answer


def object_gone(request: Request, answer: Answer) -> Answer:
    return error_answer(404, "No such object.") if _late(request) else answer


REWRITTEN = "the object was rewritten while it was read"
# (name, interference, what the reader must do: None = read it all, else the error's words)
FAULTS: list[tuple[str, Callable[[], Callable[[Request, Answer], Answer]], str | None]] = [
    ("every late range cut short", lambda: cut_short, None),
    ("one empty 206", EmptyOnce, None),
    ("empty 206 from then on", lambda: empty_206, "Cloud Storage ended the read at byte"),
    ("416 before the end", lambda: range_416, "Cloud Storage ended the read at byte"),
    ("another generation", lambda: generation_changed, REWRITTEN),
    ("the object vanishes", lambda: object_gone, REWRITTEN),
]


@pytest.fixture
def bucket(storage_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A bucket in the emulator, read in small ranges."""
    monkeypatch.setattr(files, "CHUNK", CHUNK)
    return files.storage_client().create_bucket(f"rlhf-reads-{uuid.uuid4().hex[:10]}")


def upload(bucket: Any, name: str, data: bytes) -> str:
    bucket.blob(name).upload_from_string(data)
    return f"gs://{bucket.name}/{name}"


@pytest.fixture
def hostile(storage_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """Starts a proxy with a given interference and points the client at it."""
    started: list[FaultyStorage] = []

    def start(after: Callable[[Request, Answer], Answer]) -> FaultyStorage:
        proxy = FaultyStorage(storage_emulator, after=after).start()
        started.append(proxy)
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


@pytest.mark.parametrize(("fault", "make", "expected"), FAULTS, ids=[f[0] for f in FAULTS])
def test_validate_data_reads_every_byte_or_fails(
    bucket: Any,
    hostile: Any,
    capsys: pytest.CaptureFixture[str],
    fault: str,
    make: Callable[[], Callable[[Request, Answer], Answer]],
    expected: str | None,
) -> None:
    source = upload(bucket, "vertex/prompt.jsonl", prompts(ROWS))
    proxy = hostile(make())
    status = cli.main(["validate-data", "--path", source, "--kind", "prompt", "--json"])
    out, err = capsys.readouterr()
    assert any(_late(r) for r in proxy.requests), "the fault was never exercised"
    if expected is None:
        assert status == 0, err
        assert json.loads(out)["datasets"]["prompt"]["report"]["rows"] == ROWS
        return
    assert status == 15
    assert f"error[DATA_005]: {source}: {expected}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(("fault", "make", "expected"), FAULTS, ids=[f[0] for f in FAULTS])
def test_convert_data_writes_every_row_or_nothing(
    bucket: Any,
    hostile: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fault: str,
    make: Callable[[], Callable[[Request, Answer], Answer]],
    expected: str | None,
) -> None:
    source = upload(bucket, "raw/in.jsonl", rows(ROWS))
    hostile(make())
    out = tmp_path / "out" / "train.jsonl"
    status = cli.main(["convert-data", source, str(out), "--kind", "preference"])
    err = capsys.readouterr().err
    if expected is None:
        assert status == 0, err
        assert len(out.read_bytes().splitlines()) == ROWS
        return
    assert status == 15
    assert f"error[DATA_005]: {source}: {expected}" in err
    assert "Traceback" not in err
    assert not out.parent.exists() or list(out.parent.iterdir()) == []
