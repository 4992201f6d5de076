"""Outputs that appear complete or not at all, local or on Cloud Storage, and together.

Each output is first written to a temporary next to it, named
``.<name>.tmp-<pid>-<host>-<token>``: a local file, or a Cloud Storage object whose
resumable upload is cancelled (``BlobWriter.terminate``) rather than finalised when the
run fails, so the garbage collector has nothing left to publish.

Only when every row is written are the outputs published, in this order: every
temporary is completed (fsync'd file, finalised object); the previous files of every
output but the first are removed; the first output (train) is moved into place
(``os.replace``, or a server-side rewrite), then the others. So at every instant the
outputs present all come from one run, and a run stopped while publishing leaves one
it was asked for missing: detectably incomplete, never mixed.

One writer wins per output set: each local output is locked (``flock`` on
``.<name>.lock`` beside it) from the first check to the last rename, and a second run
that wants any of them stops with a coded error; on Cloud Storage every publish (and
every withdrawal) is conditional on the generation seen at the start, so a run that
another writer overtook fails instead of mixing. A full disk or a Cloud Storage failure
(retried first) ends in a coded error naming the output; nothing half-published.

SIGTERM, SIGHUP and SIGINT stop a run cleanly (its temporaries are removed); a signal
that arrives while publishing is honoured once publishing is done. A killed run
(SIGKILL, power loss) can leave temporaries: the next run writing the same output
removes those of processes of this host that no longer exist.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import posixpath
import re
import signal
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import FrameType
from typing import IO, Any, Protocol

from vertex_rlhf.data import files
from vertex_rlhf.data.writes import write_failure
from vertex_rlhf.errors import AuthError, ConfigError, DataError, RLHFError

logger = logging.getLogger(__name__)

HOST = re.sub(r"[^A-Za-z0-9]", "", socket.gethostname())[:40] or "host"
# `-<host>-<token>` is absent from the temporaries of 1.0.0 (`.<name>.tmp-<pid>`).
_TEMPORARY = re.compile(r"\.tmp-(?P<pid>\d{1,10})(?:-(?P<host>[A-Za-z0-9]*)-[0-9a-f]{8})?")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]")
_STOP_SIGNALS = ("SIGTERM", "SIGHUP", "SIGINT")
WRITE_BUFFER = 1 << 20  # bytes per local write: rows are small, syscalls are not
RETRY_SECONDS = 120.0  # how long a Cloud Storage upload, rewrite or delete is retried


def _retry() -> Any:
    from google.api_core.retry import Retry
    from google.cloud.storage.retry import DEFAULT_RETRY

    retry: Retry = DEFAULT_RETRY.with_timeout(RETRY_SECONDS)
    return retry


def write_error(path: str, error: BaseException, published: Sequence[str] = ()) -> BaseException:
    """The coded error for a failure while writing or publishing ``path``.

    Args:
        path: the output being written, local or ``gs://``.
        error: what was raised.
        published: outputs already moved into place when it happened.

    Returns:
        A DataError (an AuthError for a refusal), or ``error`` itself when it is a coded
        error already or not a failure of the write (an interrupt).
    """
    if isinstance(error, RLHFError) or not isinstance(error, Exception):
        return error
    status = getattr(getattr(error, "response", None), "status_code", None)
    if getattr(error, "code", None) == 403 or status == 403:
        return AuthError(f"{path}: Cloud Storage refused the write ({error})")
    state = (
        f"; already in place: {', '.join(published)}; the others are missing (run again"
        " with --force)"
        if published
        else "; nothing was published"
    )
    if path.startswith("gs://"):
        if getattr(error, "code", None) in (404, 412):  # changed or removed since the start
            return DataError(
                f"{path}: another writer changed it while this run was writing{state}",
                hint="let the other run finish, then run again (with --force to replace)",
            )
        text = str(error).splitlines()[0][:300] if str(error) else ""
        what = f"{type(error).__name__}: {text}"
        return DataError(
            f"{path}: Cloud Storage failed while writing it ({what}){state}",
            hint="run the command again once Cloud Storage answers",
        )
    if isinstance(error, OSError):
        coded = write_failure(path, error)
        return DataError(coded.message + state.replace("; nothing was published", ""), coded.hint)
    return error


def temporary_name(path: str, pid: int | None = None) -> str:
    """Where ``path`` (a local path or an object name) is written before it is published."""
    head, name = posixpath.split(path)
    temporary = f".{name}.tmp-{pid or os.getpid()}-{HOST}-{os.urandom(4).hex()}"
    return posixpath.join(head, temporary)


def is_stale(temporary: str, name: str) -> bool:
    """Whether ``temporary`` is a temporary of ``name`` left by a dead process of this host."""
    prefix = f".{name}"
    if not temporary.startswith(prefix):
        return False
    match = _TEMPORARY.fullmatch(temporary[len(prefix) :])
    if not match or match["host"] not in (None, HOST):
        return False
    pid = int(match["pid"])
    return pid != os.getpid() and not _alive(pid)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return True  # os.kill(0, ...) means the process group: never guess
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # not ours to signal (another user), or absurd
        return True
    return True


def identity(path: str) -> tuple[str, ...]:
    """What a path names, so that two spellings of one file compare equal.

    Local paths are resolved (``..``, symlinks) and an existing file is known by its
    device and inode (hard links too); ``/gcs/BUCKET/KEY`` (the Cloud Storage FUSE mount)
    is ``gs://BUCKET/KEY``; object names compare with empty, ``.`` and ``..`` parts
    normalised away.
    """
    if path.startswith("gs://"):
        bucket, key = files.split_gs(path)
        return ("gs", bucket.lower(), posixpath.normpath("/" + key.lstrip("/")))
    real = os.path.realpath(path)
    if real.startswith("/gcs/"):
        return identity("gs://" + real[len("/gcs/") :])
    try:
        status = os.stat(real)
    except OSError:
        return ("path", real)
    return ("file", str(status.st_dev), str(status.st_ino))


class _Output(Protocol):
    path: str
    handle: IO[bytes]

    def acquire(self) -> None: ...
    def release(self) -> None: ...
    def exists(self) -> bool: ...
    def remove_stale(self) -> None: ...
    def open(self) -> None: ...
    def finish(self) -> None: ...
    def withdraw(self) -> None: ...
    def publish(self) -> None: ...
    def discard(self) -> None: ...


class _LocalOutput:
    """A local file written to a temporary in its directory, then renamed over it."""

    handle: IO[bytes]

    def __init__(self, path: str) -> None:
        self.path = path
        self.target = Path(path)
        parent = self.target.parent
        if self.target.is_dir():
            raise ConfigError([f"{path}: is a directory; name the output file"])
        for ancestor in (parent, *parent.parents):
            if ancestor.exists():
                if not ancestor.is_dir():
                    raise ConfigError([f"{path}: {ancestor} is not a directory"])
                break
        self.temporary = Path(temporary_name(path))
        self.lock_path = self.target.with_name(f".{self.target.name}.lock")
        self.lock: int | None = None

    def acquire(self) -> None:
        """Takes this output's lock, or stops: another run is writing it.

        Raises:
            DataError: the lock is held by another process.
        """
        self.target.parent.mkdir(parents=True, exist_ok=True)
        while True:
            descriptor = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as error:
                os.close(descriptor)
                if error.errno not in (errno.EWOULDBLOCK, errno.EACCES):
                    raise
                raise DataError(
                    f"{self.path}: another run is writing it now (it holds {self.lock_path})",
                    hint="wait for that run to finish, then run again (with --force to"
                    " replace its output)",
                ) from None
            try:  # the holder before us may have removed the file we opened: retry
                if os.fstat(descriptor).st_ino == os.stat(self.lock_path).st_ino:
                    self.lock = descriptor
                    return
            except FileNotFoundError:
                pass
            os.close(descriptor)

    def release(self) -> None:
        if self.lock is not None:
            with suppress(OSError):
                os.unlink(self.lock_path)
            os.close(self.lock)
            self.lock = None

    def exists(self) -> bool:
        return self.target.exists()

    def remove_stale(self) -> None:
        with suppress(FileNotFoundError, NotADirectoryError):
            for entry in os.scandir(self.target.parent):
                if is_stale(entry.name, self.target.name):
                    with suppress(FileNotFoundError):
                        os.unlink(entry.path)
                    logger.info("removed %s, left by a run that was killed", entry.path)

    def open(self) -> None:
        self.target.parent.mkdir(parents=True, exist_ok=True)
        self.handle = self.temporary.open("xb", buffering=WRITE_BUFFER)

    def finish(self) -> None:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()

    def withdraw(self) -> None:
        self.target.unlink(missing_ok=True)

    def publish(self) -> None:
        os.replace(self.temporary, self.target)

    def discard(self) -> None:
        if hasattr(self, "handle"):
            with suppress(OSError):
                self.handle.close()
        self.temporary.unlink(missing_ok=True)


class _GcsOutput:
    """An object uploaded to a temporary object, then rewritten (server-side) to its name."""

    handle: IO[bytes]

    def __init__(self, path: str, client: Any) -> None:
        bucket_name, key = files.split_gs(path)
        self.path = path
        self.bucket = client.bucket(bucket_name)
        self.blob = self.bucket.blob(key)
        self.temporary = self.bucket.blob(temporary_name(key))
        self.finished = False
        self.generation = 0  # of the object when the run began; 0: absent

    def acquire(self) -> None:
        """Nothing to hold: every change is conditional on ``generation`` instead."""

    def release(self) -> None:
        pass

    def exists(self) -> bool:
        found = self.bucket.get_blob(self.blob.name, retry=_retry())
        self.generation = int(found.generation or 0) if found is not None else 0
        return found is not None

    def remove_stale(self) -> None:
        from google.api_core import exceptions

        head, name = posixpath.split(self.blob.name)
        prefix = posixpath.join(head, f".{name}.tmp-")
        try:
            for blob in self.bucket.client.list_blobs(self.bucket, prefix=prefix):
                if is_stale(posixpath.basename(blob.name), name):
                    with suppress(exceptions.NotFound):
                        blob.delete()
                    logger.info(
                        "removed gs://%s/%s, left by a killed run", blob.bucket.name, blob.name
                    )
        except exceptions.NotFound:
            raise ConfigError(
                [f"{self.path}: bucket gs://{self.bucket.name} does not exist"]
            ) from None

    def open(self) -> None:
        self.handle = self.temporary.open(
            "wb", chunk_size=files.CHUNK, ignore_flush=True, if_generation_match=0, retry=_retry()
        )

    def finish(self) -> None:
        self.handle.close()  # finalises the temporary object
        self.finished = True

    def withdraw(self) -> None:
        if self.generation:  # only the object this run saw: another writer's stays
            self.blob.delete(if_generation_match=self.generation, retry=_retry())
            self.generation = 0

    def publish(self) -> None:
        from google.api_core import exceptions

        token = None
        while True:  # a large object may take several rewrite calls
            token, _, _ = self.blob.rewrite(
                self.temporary, token=token, if_generation_match=self.generation, retry=_retry()
            )
            if token is None:
                break
        with suppress(exceptions.NotFound):
            self.temporary.delete(retry=_retry())

    def discard(self) -> None:
        from google.api_core import exceptions

        handle: Any = getattr(self, "handle", None)
        if handle is not None and not handle.closed:
            try:
                handle.terminate()  # cancels the resumable upload: nothing is finalised
            except Exception as error:  # the temporary may yet appear: the next run removes it
                logger.warning("could not cancel the upload to %s: %s", self.temporary.name, error)
        if self.finished:
            with suppress(exceptions.NotFound, exceptions.GoogleAPIError):
                self.temporary.delete(retry=_retry())


def check_object_name(path: str) -> None:
    """Refuses a ``gs://`` output that is not a plain object name.

    Raises:
        ConfigError: a bad bucket name, or an empty, ``.`` or ``..`` part in the name.
    """
    bucket_name, key = files.split_gs(path)
    if not _BUCKET.fullmatch(bucket_name):
        raise ConfigError([f"{path}: {bucket_name!r} is not a Cloud Storage bucket name"])
    if not key or any(part in ("", ".", "..") for part in key.split("/")):
        raise ConfigError(
            [
                f"{path}: Cloud Storage names are literal ('a//b', 'a/./b' and 'x/../a/b'"
                " are not 'a/b'); write the object name without empty, '.' or '..' parts"
            ]
        )


def _output(path: str, client: Any) -> _Output:
    return _GcsOutput(path, client) if path.startswith("gs://") else _LocalOutput(path)


class _StopSignals:
    """Turns SIGTERM/SIGHUP into SystemExit(128 + n) and SIGINT into KeyboardInterrupt.

    While ``held``, a signal waits until the block ends: publishing and cleaning up are
    never cut short by a second Ctrl-C.
    """

    def __init__(self) -> None:
        self.holding = False
        self.raised = False
        self.pending = 0

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.holding or self.raised:
            self.pending = self.pending or signum
            return
        self.raised = True
        raise _stop(signum)

    @contextmanager
    def held(self, then_raise: bool) -> Iterator[None]:
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if then_raise and self.pending and not self.raised:
            self.raised = True
            raise _stop(self.pending)


def _stop(signum: int) -> BaseException:
    return KeyboardInterrupt() if signum == signal.SIGINT else SystemExit(128 + signum)


@contextmanager
def _stop_signals() -> Iterator[_StopSignals]:
    stops = _StopSignals()
    if threading.current_thread() is not threading.main_thread():
        yield stops  # only the main thread receives signals
        return
    numbers = [getattr(signal, name) for name in _STOP_SIGNALS if hasattr(signal, name)]
    previous = {n: signal.signal(n, stops.handle) for n in numbers}
    try:
        yield stops
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextmanager
def staged(paths: Sequence[str], force: bool) -> Iterator[list[IO[bytes]]]:
    """Opens outputs that appear, complete and together, only if the block ends without error.

    Args:
        paths: local paths or ``gs://`` objects; the first is published first (train).
        force: replace outputs that exist.

    Yields:
        One binary handle per path.

    Raises:
        ConfigError: an output exists and ``force`` is not set, or is not a valid target.
        AuthError: Cloud Storage refused access.
    """
    denied: tuple[type[Exception], ...] = ()
    client = None
    for path in paths:
        if path.startswith("gs://"):
            check_object_name(path)
    if any(path.startswith("gs://") for path in paths):
        from google.api_core import exceptions

        denied = (exceptions.Forbidden,)
        client = files.storage_client()
    outputs: list[_Output] = []
    current = paths[0]
    try:
        outputs = [_output(path, client) for path in paths]
        for output in sorted(outputs, key=lambda o: o.path):  # one order: no deadlock
            current = output.path
            output.acquire()
        existing = []
        for output in outputs:
            current = output.path
            if output.exists():
                existing.append(output.path)
        if existing and not force:
            raise ConfigError([f"{path} exists; pass --force to replace it" for path in existing])
        for output in outputs:
            current = output.path
            output.remove_stale()
    except BaseException as error:
        for output in outputs:
            output.release()
        if isinstance(error, denied):
            raise AuthError(f"Cloud Storage: access denied ({error})") from None
        coded = write_error(current, error)
        if coded is not error:
            raise coded from None
        raise
    with _stop_signals() as stops:
        try:
            yield from _written(outputs, stops, denied)
        except BaseException:
            with stops.held(then_raise=False):
                for output in outputs:
                    output.release()
            raise
        with stops.held(then_raise=True):  # a signal now is honoured once the locks are gone
            for output in outputs:
                output.release()


def _written(
    outputs: list[_Output], stops: _StopSignals, denied: tuple[type[Exception], ...]
) -> Iterator[list[IO[bytes]]]:
    """``staged``'s body: write every temporary, then complete and publish them all."""
    current: _Output | None = None
    published: list[str] = []
    try:
        for output in outputs:
            current = output
            output.open()
        current = None
        yield [output.handle for output in outputs]
        with stops.held(then_raise=True):
            for output in outputs:
                current = output
                output.finish()
            for output in outputs[1:]:
                current = output
                output.withdraw()
            for output in outputs:
                current = output
                output.publish()
                published.append(output.path)
    except BaseException as error:
        with stops.held(then_raise=False):
            for output in outputs:
                output.discard()
        # An upload refused mid-way arrives as the media layer's InvalidResponse.
        status = getattr(getattr(error, "response", None), "status_code", None)
        if isinstance(error, denied) or (denied and status == 403):
            raise AuthError(f"Cloud Storage: access denied ({error})") from None
        if current is not None:
            coded = write_error(current.path, error, published)
            if coded is not error:
                raise coded from None
        raise
