"""Shared fixtures. Every test runs with a network guard: loopback only."""

from __future__ import annotations

import ipaddress
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
TEST_PROJECT = "rlhf-test-project"

# The shipped samples: (file, kind, rows, layout) as the validator must report them.
SAMPLE_SETS = [
    ("preference.jsonl", "preference", 160, "text"),
    ("prompt.jsonl", "prompt", 100, "text"),
    ("eval.jsonl", "eval", 24, "preference text"),
    ("chat_preference.jsonl", "preference", 40, "chat"),
    ("chat_prompt.jsonl", "prompt", 30, "chat"),
]

_real_getaddrinfo = socket.getaddrinfo
_real_connect = socket.socket.connect


def _is_loopback(host: object) -> bool:
    if not isinstance(host, str):
        return True  # AF_UNIX paths and the like
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_getaddrinfo(host, *args, **kwargs):  # type: ignore[no-untyped-def]
    if host is not None and not _is_loopback(host):
        raise OSError(f"network guard: tests may not resolve {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


def _guarded_connect(self, address):  # type: ignore[no-untyped-def]
    if isinstance(address, tuple) and not _is_loopback(address[0]):
        raise OSError(f"network guard: tests may not connect to {address!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True, scope="session")
def network_guard() -> Iterator[None]:
    """Fails fast on any connection that is not to 127.0.0.1 / ::1 / localhost."""
    socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    yield
    socket.getaddrinfo = _real_getaddrinfo
    socket.socket.connect = _real_connect  # type: ignore[method-assign]


@pytest.fixture
def project_env(monkeypatch: pytest.MonkeyPatch) -> str:
    """Sets GOOGLE_CLOUD_PROJECT, which base.yaml reads."""
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", TEST_PROJECT)
    return TEST_PROJECT


@pytest.fixture
def params_dir(tmp_path: Path) -> Path:
    """A copy of params/ that a test may add files to."""
    target = tmp_path / "params"
    shutil.copytree(REPO / "params", target)
    return target


def write_jsonl(path: Path, lines: list[str] | bytes) -> Path:
    """Writes raw lines (joined with newlines) or raw bytes to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(lines, bytes):
        path.write_bytes(lines)
    else:
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path
