"""Local files written whole or not at all, whoever else is writing, and a full disk named.

``replace_whole`` writes a file next to its target and renames it over it (the target
is the old file or the new one, never a part); ``append_lines`` adds whole lines to a
JSONL log under a lock, repairing a last line a killed writer left unfinished; both
remove what they began when a write fails and raise a coded error that says what is
full. ``exclusive`` is the lock itself, for a reader that must not race a writer.
"""

from __future__ import annotations

import errno
import fcntl
import itertools
import os
import shlex
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from vertex_rlhf.errors import DataError, RLHFError

# A full disk, a full quota, a file size limit (RLIMIT_FSIZE, the file system's maximum).
NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def write_failure(path: Path | str, error: OSError, kind: type[RLHFError] = DataError) -> RLHFError:
    """The coded error for a local write that failed, naming the file and what is full.

    Args:
        path: the file being written.
        error: what the system said.
        kind: the error class of the caller's domain (DataError, PipelineError...).
    """
    folder = os.path.dirname(os.path.abspath(path)) or "/"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        what = (
            "the disk quota of the disk that holds it is used up"
            if error.errno == errno.EDQUOT
            else "the disk that holds it is full"
        )
        hint = f"free space there (see `df -h {shlex.quote(folder)}`) and run the command again"
    elif error.errno == errno.EFBIG:
        what = "the file would exceed the largest file allowed (file system or `ulimit -f`)"
        hint = "raise the limit (`ulimit -f unlimited`) or write to another disk, then run again"
    else:
        what = f"cannot be written ({error.strerror or error})"
        hint = f"check that {folder} is writable, then run the command again"
    return kind(f"{path}: {what}; it was left as it was before this run", hint=hint)


def temporary_for(path: Path) -> Path:
    """A fresh name next to ``path`` for writing it before it replaces the target."""
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(4).hex()}")


def replace_whole(
    path: Path,
    content: bytes | Callable[[IO[bytes]], None],
    kind: type[RLHFError] = DataError,
) -> None:
    """Writes ``path`` whole: to a temporary beside it, synced, then renamed over it.

    Args:
        path: the file to (re)place; its folder is created.
        content: the bytes, or a function that writes them to the open handle.
        kind: the error class for a failed write.

    Raises:
        RLHFError: of ``kind``, when the disk is full or the file cannot be written; the
            target is as it was and no temporary is left.
    """
    temporary = temporary_for(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with temporary.open("xb") as handle:
            if isinstance(content, bytes):
                handle.write(content)
            else:
                content(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        raise write_failure(path, error, kind) from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Holds the lock of ``path``'s folder while the block runs (waits for other holders).

    The folder itself is locked (``flock``): no lock file is ever left behind, and every
    writer of a log in that folder takes turns. Hold it only for a short read-and-write.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


def repair_last_line(path: Path) -> int:
    """Cuts a last line that does not end in a newline (a writer that died mid-line).

    Call it under ``exclusive``. Returns:
        The bytes removed (0 when the file ends whole or does not exist).
    """
    try:
        with path.open("r+b") as handle:
            size = handle.seek(0, os.SEEK_END)
            if size == 0:
                return 0
            handle.seek(size - 1)
            if handle.read(1) == b"\n":
                return 0
            end = size
            while end > 0:  # back to the last newline, a block at a time
                start = max(0, end - 65536)
                handle.seek(start)
                block = handle.read(end - start)
                cut = block.rfind(b"\n")
                if cut >= 0:
                    end = start + cut + 1
                    break
                end = start
            handle.truncate(end)
            return size - end
    except FileNotFoundError:
        return 0


def append_lines(path: Path, lines: list[str], kind: type[RLHFError] = DataError) -> None:
    """Appends whole lines to a log under ``exclusive``; see ``append_locked``."""
    if not lines:
        return
    with exclusive(path):
        append_locked(path, lines, kind)


def append_locked(path: Path, lines: Iterable[str], kind: type[RLHFError] = DataError) -> None:
    """Appends whole lines to a log whose lock the caller holds, 1 MiB at a time.

    A last line left unfinished by an earlier writer is cut first. If this write fails
    (a full disk), the log is cut back to its length before it: it never ends mid-line.
    Nothing is created when there are no lines.

    Raises:
        RLHFError: of ``kind``, naming the log and what is full.
    """
    batches = _batches(lines)
    first = next(batches, None)
    if first is None:
        return
    try:
        repair_last_line(path)
        descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as error:
        raise write_failure(path, error, kind) from None
    try:
        start = os.fstat(descriptor).st_size
        for batch in itertools.chain([first], batches):
            view = memoryview(batch)
            while view:
                view = view[os.write(descriptor, view) :]
    except OSError as error:
        with suppress(OSError):
            os.ftruncate(descriptor, start)
            if start == 0:  # this write created it: leave no empty log
                path.unlink()
        raise write_failure(path, error, kind) from None
    finally:
        os.close(descriptor)


def _batches(lines: Iterable[str], size: int = 1 << 20) -> Iterator[bytes]:
    """Lines (a newline added where missing) joined into blocks of about ``size`` bytes."""
    block: list[bytes] = []
    held = 0
    for line in lines:
        data = (line if line.endswith("\n") else line + "\n").encode()
        block.append(data)
        held += len(data)
        if held >= size:
            yield b"".join(block)
            block, held = [], 0
    if block:
        yield b"".join(block)
