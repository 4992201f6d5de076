"""Shared fixtures. Every test runs with a network guard: loopback only."""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.standins.registry import RegistryStandIn
from tests.standins.vertex import VertexStandIn

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"
# The template version compiled/ holds now (PIPELINE_VERSION), without importing kfp.
CURRENT_VERSION: str = __import__("json").loads(
    (REPO / "compiled" / "manifest.json").read_text(encoding="utf-8")
)["current"]
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


# Every proxy variable points at a closed loopback port, loopback excepted: HTTP and gRPC
# clients in this process and in the subprocesses tests start fail at once if they try
# to leave the machine (gRPC resolves names in C, past the Python-level guard).
_PROXY_GUARD = {
    **{
        name: "http://127.0.0.1:9"
        for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "grpc_proxy")
    },
    **{name: "127.0.0.1,localhost,::1" for name in ("NO_PROXY", "no_proxy", "no_grpc_proxy")},
}


@pytest.fixture(autouse=True, scope="session")
def network_guard() -> Iterator[None]:
    """Fails fast on any connection that is not to 127.0.0.1 / ::1 / localhost."""
    saved = {name: os.environ.get(name) for name in _PROXY_GUARD}
    os.environ.update(_PROXY_GUARD)
    socket.getaddrinfo = _guarded_getaddrinfo  # type: ignore[assignment]
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    yield
    socket.getaddrinfo = _real_getaddrinfo
    socket.socket.connect = _real_connect  # type: ignore[method-assign]
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


# What a user's shell may export that changes what our code, the SDKs or make do. Each
# test starts without them; a test that needs one sets it (monkeypatch or env=).
_USER_ENV_PREFIXES = ("RLHF_", "GOOGLE_", "CLOUDSDK_", "GCLOUD_", "GCE_METADATA_")
_USER_ENV_NAMES = {
    "LOG_LEVEL",
    "COLUMNS",
    "LINES",
    "NO_COLOR",
    "FORCE_COLOR",
    "PYTHONWARNINGS",
    "PYTHONBREAKPOINT",
    "PYTHONINSPECT",
    "MAKEFLAGS",
    "MFLAGS",
    "MAKELEVEL",
    "GNUMAKEFLAGS",
    # The Makefile's user variables (USER_VARS) and its interpreter, read from the environment.
    *("ENV", "OVERRIDES", "JOB", "JOB_ID", "JOBS", "LAST", "VERSION", "WAIT", "DRY_RUN", "YES"),
    *("IN", "OUT", "KIND", "ARGS", "CONFIG", "CRON", "NAME"),
    "PYTHON",
}


def _user_env_names(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    return sorted(
        name for name in environ if name in _USER_ENV_NAMES or name.startswith(_USER_ENV_PREFIXES)
    )


@pytest.fixture(autouse=True, scope="session")
def clean_user_environment() -> Iterator[None]:
    """Runs the suite without the caller's LOG_LEVEL, RLHF_*/GOOGLE_* and make variables.

    Tests must not depend on the shell they run in: ``LOG_LEVEL=DEBUG`` exported, a
    project in ``GOOGLE_CLOUD_PROJECT`` or ``VERSION`` set for something else would
    change messages, exit paths and make's arguments. Restored after the session.
    """
    saved = {name: os.environ.pop(name) for name in _user_env_names(os.environ)}
    yield
    for name in _user_env_names(os.environ):
        os.environ.pop(name, None)
    os.environ.update(saved)


@pytest.fixture(autouse=True)
def no_user_environment_leaks(clean_user_environment: None) -> Iterator[None]:
    """Fails a test that leaves a user variable set (set them with monkeypatch)."""
    yield
    left = _user_env_names(os.environ)
    if left:
        for name in left:
            os.environ.pop(name, None)
        pytest.fail(f"the test left {', '.join(left)} in os.environ: use monkeypatch.setenv")


# Every process the suite starts inherits this mark; at the end none may be left.
RUN_MARK = "PYTEST_VERTEX_RLHF_RUN"
_SIGNALS = (signal.SIGINT, signal.SIGHUP, signal.SIGTERM, signal.SIGQUIT)


def _marked_processes(mark: str) -> list[str]:
    """Live processes other than this one whose environment holds ``mark``."""
    found = []
    needle = f"{RUN_MARK}={mark}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone, or not ours to read
            continue
        if command:  # a zombie has none: it is ending
            found.append(f"{entry.name}: {command[:200]}")
    return found


@pytest.fixture(autouse=True, scope="session")
def no_process_left_behind() -> Iterator[None]:
    """Fails the run if a process it started (marked by RUN_MARK) outlives it; kills those."""
    mark = uuid.uuid4().hex
    os.environ[RUN_MARK] = mark
    yield
    deadline = time.monotonic() + 10
    while (left := _marked_processes(mark)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for line in left:
        with suppress(OSError):
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
    os.environ.pop(RUN_MARK, None)
    assert not left, "processes the tests started are still running:\n" + "\n".join(left)


def default_signals() -> None:
    """``preexec_fn`` for a child a test signals: the default action for stop signals."""
    for signum in _SIGNALS:
        signal.signal(signum, signal.SIG_DFL)


@contextmanager
def signalled_child(args: list[str], **popen: object) -> Iterator[subprocess.Popen[str]]:
    """Starts a child that a test will signal, and kills it if the test leaves it running.

    The child gets the default handling of SIGINT, SIGHUP, SIGTERM and SIGQUIT even
    when the suite itself runs with them ignored (``nohup``, a background job, ``trap
    '' INT``), which the child would otherwise inherit.
    """
    process: subprocess.Popen[str] = subprocess.Popen(  # type: ignore[call-overload]
        args, preexec_fn=default_signals, **popen
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def fresh_pipeline_root() -> str:
    """A pipeline root in a bucket no test used before.

    The SDK creates a missing bucket locally (in the emulator), but checks an existing
    one's owner through Resource Manager, which is outside this machine.
    """
    import uuid

    return f"vertex_ai.pipeline_root=gs://rlhf-test-{uuid.uuid4().hex[:12]}/root"


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


@pytest.fixture(params=["orjson", "json"])
def json_parser(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a dataset test with orjson, and again with orjson hidden (as on an image without it).

    The rules import orjson at call time, so ``sys.modules["orjson"] = None`` makes them
    fall back to the standard library for the test.
    """
    import sys

    if request.param == "json":
        monkeypatch.setitem(sys.modules, "orjson", None)
    else:
        pytest.importorskip("orjson", reason="orjson cannot be imported in this process")
    return str(request.param)


def write_jsonl(path: Path, lines: list[str] | bytes) -> Path:
    """Writes raw lines (joined with newlines) or raw bytes to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(lines, bytes):
        path.write_bytes(lines)
    else:
        path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def storage_emulator() -> Iterator[str]:
    """gcp-storage-emulator on 127.0.0.1; google-cloud-storage (and the SDK) talk to it."""
    from gcp_storage_emulator.server import create_server

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    server = create_server("127.0.0.1", port, in_memory=True)
    server.start()
    host = f"http://127.0.0.1:{port}"
    previous = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = host
    yield host
    server.stop()
    if previous is None:
        os.environ.pop("STORAGE_EMULATOR_HOST", None)
    else:
        os.environ["STORAGE_EMULATOR_HOST"] = previous


class FakeClock:
    """Virtual seconds: ``sleep`` advances time instantly; the stand-ins read it too."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += seconds

    def now(self) -> datetime:
        from tests.standins.vertex import EPOCH

        return EPOCH + timedelta(seconds=self.t)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def vertex() -> Iterator[VertexStandIn]:
    """A Vertex AI stand-in on real time."""
    standin = VertexStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def vertex_on_fake_clock(clock: FakeClock) -> Iterator[VertexStandIn]:
    """A Vertex AI stand-in whose timelines run on the test's fake clock."""
    standin = VertexStandIn(clock=clock).start()
    yield standin
    standin.stop()


@pytest.fixture
def registry_standin() -> Iterator[RegistryStandIn]:
    standin = RegistryStandIn().start()
    yield standin
    standin.stop()


@pytest.fixture
def compiled_copy(tmp_path: Path) -> Path:
    """A copy of compiled/ that a test may publish from and record into."""
    target = tmp_path / "compiled"
    shutil.copytree(REPO / "compiled", target)
    return target


def before_each_piece(
    monkeypatch: pytest.MonkeyPatch,
    here: Callable[[], None] | None = None,
    in_workers: Callable[[], None] | None = None,
) -> None:
    """Makes parallel validation run ``here`` (in this process) or ``in_workers`` (in the
    forked ones) before each piece it checks: to kill a worker, or to make one late."""
    from vertex_rlhf.data import parallel

    parent, real = os.getpid(), parallel.check_piece

    def piece(*args: Any) -> Any:
        action = here if os.getpid() == parent else in_workers
        if action is not None:
            action()
        return real(*args)

    monkeypatch.setattr(parallel, "check_piece", piece)


def fork_refused() -> int:
    """Stands for ``os.fork`` when the system refuses a new process (EAGAIN)."""
    raise BlockingIOError("Resource temporarily unavailable")
