"""Cloud Storage failing while convert-data writes or publishes: retried, then a coded error
with nothing half-published; another writer that published first wins.

The storage emulator sits behind a proxy that answers ``503`` to upload requests or to the
publishing rewrite, once or always, and enforces ``ifGenerationMatch`` on the rewrite
(which the emulator ignores) so that a writer that got there first can be staged.
"""

from __future__ import annotations

import gc
import json
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.standins.faulty_storage import Answer, FaultyStorage, Request, error_answer
from tests.test_convert_guarantees import seed_lines
from vertex_rlhf import cli
from vertex_rlhf.data import files, outputs

REWRITE = re.compile(r"/rewriteTo/b/(?P<bucket>[^/]+)/o/(?P<name>[^?]+)")


def is_upload(request: Request) -> bool:
    return "/upload/" in request.path


class Faults:
    """A proxy's ``before`` hook: 503 where ``where`` matches, ``times`` times (0: always)."""

    def __init__(self, where: Callable[[Request], bool], times: int = 0) -> None:
        self.where = where
        self.times = times
        self.seen = 0
        self.proxy: FaultyStorage | None = None
        self.rival: bytes | None = None  # published by "another writer" at the first rewrite

    def __call__(self, request: Request) -> Answer | None:
        if self.where(request) and (self.times == 0 or self.seen < self.times):
            self.seen += 1
            return error_answer(503, "Service Unavailable")
        match = REWRITE.search(request.path)
        if match and self.proxy is not None:
            return self._conditional(request, match)
        return None

    def _conditional(self, request: Request, match: re.Match[str]) -> Answer | None:
        assert self.proxy is not None
        bucket, name = match["bucket"], match["name"]
        if self.rival is not None and name.endswith("train.jsonl"):
            upload = Request(
                "POST",
                f"/upload/storage/v1/b/{bucket}/o?uploadType=media&name={name}",
                {"content-type": "application/octet-stream"},
                self.rival,
            )
            self.proxy.forward(upload)
            self.rival = None
        wanted = parse_qs(urlsplit(request.path).query).get("ifGenerationMatch")
        if wanted is None:
            return None
        found = self.proxy.forward(Request("GET", f"/storage/v1/b/{bucket}/o/{name}", {}, b""))
        generation = json.loads(found.body)["generation"] if found.status == 200 else "0"
        if str(generation) != wanted[0]:
            return error_answer(412, "At least one of the pre-conditions did not hold.")
        return None


@pytest.fixture
def bucket(storage_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(outputs, "RETRY_SECONDS", 1.5)  # retried, but briefly here
    return files.storage_client().create_bucket(f"rlhf-writes-{uuid.uuid4().hex[:10]}")


@pytest.fixture
def through(storage_emulator: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    started: list[FaultyStorage] = []

    def start(faults: Faults) -> FaultyStorage:
        proxy = FaultyStorage(storage_emulator, before=faults).start()
        faults.proxy = proxy
        started.append(proxy)
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.url)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()


# name -> (where the 503s go, how many (0: always), whether the run still succeeds)
FAULTS: dict[str, tuple[Callable[[Request], bool], int, bool]] = {
    "every upload request": (is_upload, 0, False),
    "every upload chunk": (lambda r: is_upload(r) and r.method == "PUT", 0, False),
    "one upload chunk": (lambda r: is_upload(r) and r.method == "PUT", 1, True),
    "every publishing rewrite": (lambda r: bool(REWRITE.search(r.path)), 0, False),
    "one publishing rewrite": (lambda r: bool(REWRITE.search(r.path)), 1, True),
}


def objects(bucket: Any) -> list[str]:
    gc.collect()  # an abandoned upload would be finalised here
    return sorted(b.name for b in bucket.list_blobs(prefix="vertex/"))


def convert(source: Path, bucket: Any, *extra: str) -> list[str]:
    target = f"gs://{bucket.name}/vertex"
    return [
        "convert-data",
        str(source),
        f"{target}/train.jsonl",
        "--kind=preference",
        f"--eval-out={target}/eval.jsonl",
        "--eval-fraction=0.2",
        *extra,
    ]


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_storage_failures_while_publishing(
    bucket: Any,
    through: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    fault: str,
) -> None:
    where, times, succeeds = FAULTS[fault]
    source = tmp_path / "in.jsonl"
    source.write_bytes(seed_lines(3000))
    faults = Faults(where, times)
    through(faults)
    status = cli.main(convert(source, bucket))
    err = capsys.readouterr().err
    assert faults.seen, "the fault was never exercised"
    assert "Traceback" not in err
    if succeeds:
        assert status == 0, err
        assert objects(bucket) == ["vertex/eval.jsonl", "vertex/train.jsonl"]
        return
    assert status == 15, err
    assert re.search(r"error\[DATA_005\]: gs://\S+/vertex/\w+\.jsonl: Cloud Storage failed", err)
    assert "nothing was published" in err
    assert objects(bucket) == []


def test_another_writer_that_published_first_wins(
    bucket: Any, through: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "in.jsonl"
    source.write_bytes(seed_lines(3000))
    faults = Faults(lambda r: False)
    faults.rival = b'{"rival": true}\n'
    through(faults)
    assert cli.main(convert(source, bucket)) == 15
    err = capsys.readouterr().err
    train = f"gs://{bucket.name}/vertex/train.jsonl"
    assert f"error[DATA_005]: {train}: another writer changed it while" in err
    assert bucket.blob("vertex/train.jsonl").download_as_bytes() == b'{"rival": true}\n'
    assert objects(bucket) == ["vertex/train.jsonl"]  # no eval of ours beside the rival's train
