"""What is at a path, named without opening it (a FIFO or device is never opened)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def path_kind(path: Path) -> str | None:
    """What is at ``path`` without opening it: "a file", "a directory", "a FIFO", ... or None."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    except OSError as error:
        return f"unreadable ({error.strerror})"
    if stat.S_ISREG(mode):
        return "a file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"
