"""Where dataset bytes come from: local files or Cloud Storage, streamed line by line.

Used by the CLI (``rlhf validate-data``, ``rlhf convert-data``); the pipeline
component reads ``gs://`` through ``/gcs/`` instead. Nothing here loads a whole file.
"""

from __future__ import annotations

import io
import itertools
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from vertex_rlhf.data.matching import (
    dataset_files,
    dataset_path_problem,
    glob_magic_index,
    match_glob,
)
from vertex_rlhf.data.parallel import can_split, check_files, process_count
from vertex_rlhf.data.progress import ProgressSink, counted
from vertex_rlhf.data.rules import add_problem, check_lines, merge_reports, new_dataset_report
from vertex_rlhf.errors import AuthError, DataError, RLHFError

CHUNK = 8 * 1024 * 1024  # bytes per Cloud Storage read
EMPTY_RETRIES = 2  # empty answers in a row for a range before the end: then an error
# Local datasets are read on several cores from 2x this size (see parallel.process_count).
PARALLEL_MIN_BYTES = 16 << 20


@dataclass(frozen=True)
class Source:
    """One file of a dataset: its name as shown, and how to open it for reading bytes."""

    name: str
    open: Callable[[], IO[bytes]]
    size: int | None = None  # bytes, where known (for progress)
    local: str | None = None  # the readable path of a local file


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

    from vertex_rlhf.config import endpoints

    try:
        if endpoints.storage_emulator():
            from google.auth.credentials import AnonymousCredentials

            return storage.Client(project="emulator", credentials=AnonymousCredentials())
        return storage.Client()
    except DefaultCredentialsError as error:
        raise AuthError(f"Cloud Storage: no credentials ({error})") from None


def _gcs_sources(path: str) -> tuple[list[Source], str]:
    """Lists a bucket under the pattern's literal prefix and selects with ``match_glob``."""
    from google.api_core import exceptions

    import vertex_rlhf.cloud.calls as calls

    client = storage_client()
    bucket_name, pattern = split_gs(path)
    magic = glob_magic_index(pattern)
    prefix = pattern if magic < 0 else pattern[:magic]
    # Through the one door: retried as every read is, and whatever the client raises
    # (an unreachable token endpoint or host, a proxy) ends in a coded error.
    bounds = {"retry": calls.read_retry(), "timeout": calls.remaining(60.0)}
    try:
        bucket = client.bucket(bucket_name)
        if not bucket.exists(**bounds):
            raise DataError(
                f"{path}: bucket gs://{bucket_name} does not exist or is not readable",
                hint="check the bucket name and that your account can read it",
            )
        listed = client.list_blobs(bucket, prefix=prefix, **bounds)
        blobs = {b.name: b for b in listed if not b.name.endswith("/")}
        names = match_glob(pattern, blobs)
        if not names and next(
            iter(client.list_blobs(bucket, prefix=pattern + "/", **bounds)), None
        ):
            return [], f"is a directory; give a glob such as {path}/*.jsonl"
    except exceptions.Forbidden as error:
        raise AuthError(f"{path}: access denied ({error.message})") from None
    except RLHFError:
        raise
    except Exception as error:
        raise calls.coded(error, f"list {path}") from None
    if not names:
        return [], "matches no files; check the path and the glob pattern"
    return [Source(f"gs://{bucket_name}/{n}", _opener(blobs[n]), blobs[n].size) for n in names], ""


def _local_opener(path: str) -> Callable[[], IO[bytes]]:
    return lambda: open(path, "rb", buffering=1 << 20)  # closed by lines_of; 8 KiB costs 20%


def _opener(blob: Any) -> Callable[[], IO[bytes]]:
    name = f"gs://{blob.bucket.name}/{blob.name}"
    return lambda: ObjectReader(blob, name)  # type: ignore[return-value]


class ObjectReader(io.RawIOBase):
    """Reads one generation of an object in ranges, whole or not at all.

    google-cloud-storage's ``BlobReader`` takes a ``416`` or an empty ``206`` before the
    end for the end of the object, so a cut read looks like a shorter, valid file. Here
    the bytes are counted against the size the listing gave, the generation it gave is
    pinned (sent with every range, and compared with the one each answer names), and a
    range that comes back short is read on from where it stopped.

    Raises (from ``read``):
        DataError: the object ends early, grows, or was rewritten while it was read.
    """

    def __init__(self, blob: Any, name: str, chunk: int | None = None) -> None:
        super().__init__()
        self.name = name
        self.size = int(blob.size or 0)
        self.generation = blob.generation
        self.blob = blob.bucket.blob(blob.name, generation=blob.generation)
        self.chunk = chunk or CHUNK
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (a chunk when -1); ``b""`` only at the object's end."""
        left = self.size - self.position
        if left <= 0:
            return b""
        want = min(left, self.chunk if size is None or size < 0 else size)
        data = b""
        empty = 0
        while len(data) < want:
            got = self._range(self.position + len(data), want - len(data))
            if not got:
                empty += 1
                if empty > EMPTY_RETRIES:
                    raise self._ended(self.position + len(data))
            data += got
        self.position += len(data)
        return data

    def _range(self, start: int, length: int) -> bytes:
        from google.api_core import exceptions

        try:
            data = self.blob.download_as_bytes(start=start, end=start + length - 1, checksum=None)
        except exceptions.RequestRangeNotSatisfiable:
            return b""
        except exceptions.NotFound:
            raise self._rewritten("no longer exists") from None
        except exceptions.Forbidden as error:
            raise AuthError(f"{self.name}: access denied ({error.message})") from None
        except (exceptions.GoogleAPIError, OSError, ValueError) as error:
            raise DataError(
                f"{self.name}: Cloud Storage failed while reading byte {start} of"
                f" {self.size} ({type(error).__name__}: {error})",
                hint="run the command again; nothing was written",
            ) from None
        answered = self.blob.generation
        if answered not in (None, self.generation) and str(answered) != str(self.generation):
            raise self._rewritten(f"is now generation {answered}")
        if len(data) > length:
            raise DataError(
                f"{self.name}: Cloud Storage answered {len(data)} bytes for a range of"
                f" {length} at byte {start}; the object's size was {self.size}",
                hint="run the command again; nothing was written",
            )
        return bytes(data)

    def _ended(self, at: int) -> DataError:
        return DataError(
            f"{self.name}: Cloud Storage ended the read at byte {at} of {self.size}"
            f" (generation {self.generation}); the dataset was not read whole",
            hint="run the command again; if it recurs, check the object's size and"
            " generation in the Cloud Storage console",
        )

    def _rewritten(self, now: str) -> DataError:
        return DataError(
            f"{self.name}: the object was rewritten while it was read (generation"
            f" {self.generation} {now})",
            hint="run the command again once whatever writes the object has finished",
        )


def select(path: str) -> tuple[list[Source], str]:
    """The files a path or glob selects, local or ``gs://``, sorted by name.

    The selection is ``matching.match_glob``'s, the same the pipeline component uses.

    Returns:
        The sources, and when there are none, why (a directory, ``**``, no match).

    Raises:
        DataError: a missing bucket.
    """
    problem = dataset_path_problem(path)
    if problem:
        return [], problem
    if path.startswith("gs://"):
        return _gcs_sources(path)
    found, problem = dataset_files(path)
    return [
        Source(shown, _local_opener(name), os.path.getsize(name), name) for shown, name in found
    ], problem


def sources(path: str) -> list[Source]:
    """The files a path or glob selects (see ``select``); empty when none.

    Raises:
        DataError: a missing bucket.
    """
    return select(path)[0]


def block_lines(handle: IO[bytes], size: int = 0) -> Iterator[bytes]:
    """Splits a stream into lines (without ``\\n``), reading ``size`` bytes at a time.

    google-cloud-storage's BlobReader inherits ``IOBase.readline``, which reads in tiny
    pieces: iterating it line by line is about 100 times slower than this.
    """
    rest = b""
    while block := handle.read(size or CHUNK):
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
    processes: int = 0,
) -> dict[str, Any]:
    """Validates every row of every file ``path`` names; files are read concurrently.

    A large local dataset (one file or many) is read on every core instead
    (``parallel.check_files``: the report of a single pass; a profile takes part if it can
    be split, see ``Profile.child``, and then equals a single pass's too).

    Args:
        path: a local or ``gs://`` path or glob.
        kind: preference, prompt or eval.
        max_reported: problems to keep word for word.
        observe: given a file name, returns a per-row callback (e.g. a profile), or None;
            it is called from one thread at a time.
        workers: files read at once by threads (``gs://``, small local datasets).
        progress: told the total size, then the bytes and rows read.
        processes: processes for a large local dataset; 0 means one per core, 1 none.

    Returns:
        The merged report (see ``rules.new_dataset_report``).
    """
    found, problem = select(path)
    if not found:
        report = new_dataset_report(path, kind, max_reported)
        add_problem(report, path, problem)
        return report

    if progress is not None:
        progress.start(path, sum(s.size or 0 for s in found))
    observers = [observe(source.name) if observe else None for source in found]
    sizes = [source.size or 0 for source in found]
    local = all(source.local is not None for source in found)
    count = process_count(sizes, processes, PARALLEL_MIN_BYTES) if local else 1
    if count > 1 and all(map(can_split, observers)):
        template = new_dataset_report(path, kind, max_reported)
        names = [(source.name, source.local or "") for source in found]
        told = [0, 0]

        def tally(nbytes: int, rows: int) -> None:
            told[0], told[1] = told[0] + nbytes, told[1] + rows
            progress.advance(nbytes, rows)  # type: ignore[union-attr]

        told_to = tally if progress is not None else None
        parts = check_files(template, names, observers, count, PARALLEL_MIN_BYTES, told_to)
        if progress is not None:  # settle on the real totals (a BOM is not counted, ...)
            rows = sum(part["rows"] for part in parts)
            progress.advance(sum(sizes) - told[0], rows - told[1])
        return merge_reports(path, kind, parts)
    return merge_reports(
        path, kind, _read_in_threads(path, kind, max_reported, found, observers, workers, progress)
    )


def _read_in_threads(
    path: str,
    kind: str,
    max_reported: int,
    found: list[Source],
    observers: list[Callable[[dict[str, Any]], None] | None],
    workers: int,
    progress: ProgressSink | None,
) -> list[dict[str, Any]]:
    """Checks each file in a thread of its own (one core): one report per file, in order."""
    lock = threading.Lock()
    # A thread cannot be interrupted: on Ctrl-C (or any error) here, each one stops
    # at its next 1024 lines instead of reading its file to the end.
    stop = threading.Event()

    def one(index: int) -> dict[str, Any]:
        source, observer = found[index], observers[index]
        part = new_dataset_report(path, kind, max_reported)
        if observer is not None:
            unlocked = observer

            def observer(row: dict[str, Any]) -> None:
                with lock:
                    unlocked(row)

        with lines_of(source, progress) as lines:
            check_lines(part, source.name, until(stop, lines), observer)
        return part

    if len(found) == 1:  # in this thread, so that Ctrl-C stops it at once
        return [one(0)]
    from concurrent.futures import ThreadPoolExecutor  # 4 ms to import: here only

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(found)))) as pool:
        try:
            return list(pool.map(one, range(len(found))))
        except BaseException:
            stop.set()
            raise


def until(stop: threading.Event, lines: Iterator[bytes], every: int = 1024) -> Iterator[bytes]:
    """Passes ``lines`` through until ``stop`` is set (checked every ``every`` lines)."""
    lines = iter(lines)
    while not stop.is_set():
        chunk = list(itertools.islice(lines, every))
        if not chunk:
            return
        yield from chunk


@dataclass(frozen=True)
class Head:
    """The first lines of a Cloud Storage object (a sample, never the whole object).

    Attributes:
        name: ``gs://bucket/object`` that was read.
        lines: whole lines (without ``\\n``), at most the number asked for; a line longer
            than the bytes allowed is cut there (``cut`` is True).
        size: the object's size in bytes.
        read: how many of its bytes were read.
        cut: the last line was cut at the byte bound.
    """

    name: str
    lines: list[bytes]
    size: int
    read: int
    cut: bool = False


MAX_LISTED = 1000  # objects listed under a folder whose first file is sampled


def object_head(uri: str, max_lines: int, max_bytes: int) -> Head | None:
    """Reads the first ``max_lines`` lines of a ``gs://`` object, at most ``max_bytes``.

    ``uri`` names an object, or a folder whose first non-empty object (by name) is read.
    Bytes are read in ranges counted against the object's size and pinned to its
    generation (``ObjectReader``), and reading stops at the bound: a 100 GB output costs
    ``max_bytes`` at most.

    Returns:
        The lines, or None when nothing is there.

    Raises:
        AuthError, NetworkError, DataError, ...: the object cannot be read (coded).
    """
    import vertex_rlhf.cloud.calls as calls

    bucket_name, key = split_gs(uri)
    bounds = {"retry": calls.read_retry(), "timeout": calls.remaining(60.0)}
    try:
        client = storage_client()
        bucket = client.bucket(bucket_name)
        blob = bucket.get_blob(key, **bounds) if key and not key.endswith("/") else None
        if blob is None:
            prefix = key.rstrip("/") + "/" if key else ""
            listed = client.list_blobs(bucket, prefix=prefix, max_results=MAX_LISTED, **bounds)
            found = sorted(
                (b for b in listed if not b.name.endswith("/") and (b.size or 0) > 0),
                key=lambda b: b.name,
            )
            blob = found[0] if found else None
        if blob is None:
            return None
        name = f"gs://{bucket_name}/{blob.name}"
        reader = ObjectReader(blob, name, chunk=min(CHUNK, max(1, max_bytes)))
        data = b""
        while len(data) < max_bytes and data.count(b"\n") < max_lines:
            block = reader.read(min(64 * 1024, max_bytes - len(data)))
            if not block:
                break
            data += block
    except RLHFError:
        raise
    except Exception as error:
        raise calls.coded(error, f"read {uri}") from None
    ended = reader.position >= reader.size
    lines = data.split(b"\n")
    last = lines.pop()  # after the last newline: a whole line only at the object's end
    cut = False
    if last and ended:
        lines.append(last)
    elif last and not lines:  # one line longer than the bound: its start, marked cut
        lines, cut = [last], True
    return Head(name, lines[:max_lines], reader.size, reader.position, cut)
