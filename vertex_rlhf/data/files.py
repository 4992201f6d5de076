"""Where dataset bytes come from: local files or Cloud Storage, streamed line by line.

Used by the CLI (``rlhf validate-data``, ``rlhf convert-data``); the pipeline
component reads ``gs://`` through ``/gcs/`` instead. Nothing here loads a whole file.
"""

from __future__ import annotations

import fnmatch
import glob
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from vertex_rlhf.data.progress import ProgressSink, counted
from vertex_rlhf.data.rules import (
    add_problem,
    check_lines,
    dataset_files,
    merge_reports,
    new_dataset_report,
)
from vertex_rlhf.errors import AuthError, DataError

CHUNK = 8 * 1024 * 1024  # bytes per Cloud Storage read


@dataclass(frozen=True)
class Source:
    """One file of a dataset: its name as shown, and how to open it for reading bytes."""

    name: str
    open: Callable[[], IO[bytes]]
    size: int | None = None  # bytes, where known (for progress)


def split_gs(path: str) -> tuple[str, str]:
    """``gs://bucket/a/b`` -> ``("bucket", "a/b")``."""
    bucket, _, key = path[len("gs://") :].partition("/")
    return bucket, key


def storage_client() -> Any:
    """A google-cloud-storage client (the emulator's, if STORAGE_EMULATOR_HOST is set).

    Raises:
        AuthError: no credentials and no emulator.
    """
    from google.auth.exceptions import DefaultCredentialsError
    from google.cloud import storage  # type: ignore[attr-defined]

    try:
        if os.environ.get("STORAGE_EMULATOR_HOST"):
            from google.auth.credentials import AnonymousCredentials

            return storage.Client(project="emulator", credentials=AnonymousCredentials())
        return storage.Client()
    except DefaultCredentialsError as error:
        raise AuthError(f"Cloud Storage: no credentials ({error})") from None


def _gcs_sources(path: str) -> list[Source]:
    from google.api_core import exceptions

    client = storage_client()
    bucket_name, pattern = split_gs(path)
    magic = glob.has_magic(pattern)
    prefix = pattern[: min((pattern.find(c) for c in "*?[" if c in pattern), default=None)]
    try:
        bucket = client.bucket(bucket_name)
        if not bucket.exists():
            raise DataError(
                f"{path}: bucket gs://{bucket_name} does not exist or is not readable",
                hint="check the bucket name and that your account can read it",
            )
        blobs = sorted(
            (
                b
                for b in client.list_blobs(bucket, prefix=prefix if magic else pattern)
                if (fnmatch.fnmatchcase(b.name, pattern) if magic else b.name == pattern)
                and not b.name.endswith("/")
            ),
            key=lambda b: b.name,
        )
    except exceptions.Forbidden as error:
        raise AuthError(f"{path}: access denied ({error.message})") from None
    return [Source(f"gs://{bucket_name}/{b.name}", _opener(b), b.size) for b in blobs]


def _local_opener(path: str) -> Callable[[], IO[bytes]]:
    return lambda: open(path, "rb")  # closed by lines_of


def _opener(blob: Any) -> Callable[[], IO[bytes]]:
    return lambda: blob.open("rb", chunk_size=CHUNK)


def sources(path: str) -> list[Source]:
    """The files a path or glob names, local or ``gs://``, sorted by name.

    Raises:
        DataError: a missing bucket. (No match at all is reported by the validator.)
    """
    if path.startswith("gs://"):
        return _gcs_sources(path)
    return [Source(p, _local_opener(p), os.path.getsize(p)) for p in dataset_files(path)]


def block_lines(handle: IO[bytes], size: int = CHUNK) -> Iterator[bytes]:
    """Splits a stream into lines (without ``\\n``), reading ``size`` bytes at a time.

    google-cloud-storage's BlobReader inherits ``IOBase.readline``, which reads in tiny
    pieces: iterating it line by line is about 100 times slower than this.
    """
    rest = b""
    while block := handle.read(size):
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        yield from lines
    if rest:
        yield rest


@contextmanager
def lines_of(source: Source, progress: ProgressSink | None = None) -> Iterator[Iterator[bytes]]:
    """Opens a source and yields an iterator over its raw lines (counted into ``progress``)."""
    handle = source.open()
    try:
        lines = block_lines(handle) if source.name.startswith("gs://") else iter(handle)
        yield counted(lines, progress, source.size)
    finally:
        handle.close()


def validate(
    path: str,
    kind: str,
    max_reported: int = 5,
    observe: Callable[[str], Callable[[dict[str, Any]], None] | None] | None = None,
    workers: int = 8,
    progress: ProgressSink | None = None,
) -> dict[str, Any]:
    """Validates every row of every file ``path`` names; files are read concurrently.

    Args:
        path: a local or ``gs://`` path or glob.
        kind: preference, prompt or eval.
        max_reported: problems to keep word for word.
        observe: given a file name, returns a per-row callback (e.g. a profile's), or None.
        workers: files read at once.
        progress: told the total size, then the bytes and rows read.

    Returns:
        The merged report (see ``rules.new_dataset_report``).
    """
    found = sources(path)
    if not found:
        report = new_dataset_report(path, kind, max_reported)
        add_problem(report, path, "matches no files; check the path and the glob pattern")
        return report

    if progress is not None:
        progress.start(path, sum(s.size or 0 for s in found))

    def one(source: Source) -> dict[str, Any]:
        part = new_dataset_report(path, kind, max_reported)
        with lines_of(source, progress) as lines:
            check_lines(part, source.name, lines, observe(source.name) if observe else None)
        return part

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(found)))) as pool:
        parts = list(pool.map(one, found))
    return merge_reports(path, kind, parts)
