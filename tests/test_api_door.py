"""The door every Google API call passes: what each failure becomes, the endpoint rule."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests
from google.api_core import exceptions as api
from google.auth import exceptions as auth
from google.protobuf.json_format import ParseError

from tests.conftest import REPO, TEST_PROJECT
from tests.standins.auth import Listener, TokenStandIn
from vertex_rlhf import cli
from vertex_rlhf.cloud import calls
from vertex_rlhf.cloud.vertex import VertexTarget
from vertex_rlhf.config import endpoints
from vertex_rlhf.errors import ConfigError, RLHFError


def http_error(status: int) -> requests.HTTPError:
    response = requests.Response()
    response.status_code = status
    return requests.HTTPError(f"{status} error", response=response)


# (the failure, the code it becomes, a word its message must hold)
FAILURES: list[tuple[BaseException, str, str]] = [
    (auth.TransportError("connection refused"), "NETWORK_006", "token endpoint"),
    (auth.RefreshError("invalid_grant"), "AUTH_001", "refused"),
    (auth.DefaultCredentialsError("none"), "AUTH_001", "refused"),
    (requests.exceptions.ProxyError("Unable to connect to proxy"), "NETWORK_006", "proxy"),
    (requests.exceptions.SSLError("certificate verify failed"), "NETWORK_006", "TLS"),
    (
        requests.exceptions.ConnectionError("Failed to resolve 'x.googleapis.com'"),
        "NETWORK_006",
        "DNS",
    ),
    (requests.exceptions.ConnectionError("[Errno 111] refused"), "NETWORK_006", "connection"),
    (requests.exceptions.ReadTimeout("read timed out"), "NETWORK_006", "in time"),
    (TimeoutError("no answer"), "NETWORK_006", "in time"),
    (api.ServiceUnavailable("backend"), "NETWORK_006", "HTTP 503"),
    (api.DeadlineExceeded("slow"), "NETWORK_006", "HTTP 504"),
    (api.RetryError("ran out", api.ServiceUnavailable("backend")), "NETWORK_006", "HTTP 503"),
    (api.RetryError("ran out", requests.exceptions.ProxyError("x")), "NETWORK_006", "proxy"),
    (api.Unauthorized("bad token"), "AUTH_001", "refused"),
    (api.PermissionDenied("no"), "AUTH_001", "permission denied"),
    (ParseError("Failed to load JSON"), "PIPELINE_003", "malformed"),
    (json.JSONDecodeError("Expecting value", "{", 1), "PIPELINE_003", "malformed"),
    (requests.exceptions.JSONDecodeError("Expecting value", "{", 1), "PIPELINE_003", "malformed"),
    (KeyError("version"), "PIPELINE_003", "malformed"),
    (http_error(401), "AUTH_001", "HTTP 401"),
    (http_error(503), "NETWORK_006", "HTTP 503"),
    (http_error(418), "PIPELINE_003", "HTTP 418"),
    (RuntimeError("odd"), "PIPELINE_003", "unexpectedly"),
]


@pytest.mark.parametrize(
    ("failure", "code", "word"), FAILURES, ids=[f"{type(f[0]).__name__}-{f[2]}" for f in FAILURES]
)
def test_every_failure_becomes_a_coded_error_naming_the_call_with_a_fix(
    failure: BaseException, code: str, word: str
) -> None:
    error = calls.coded(failure, "read projects/p/locations/l/pipelineJobs/j")
    assert error.code == code
    assert error.message.startswith("read projects/p/locations/l/pipelineJobs/j: ")
    assert word in error.message
    assert "fix:" in error.render() or code == "CONFIG_002"


@pytest.mark.parametrize(
    ("failure", "retried"),
    [
        (api.ServiceUnavailable("backend"), True),
        (api.TooManyRequests("slow down"), True),
        (requests.exceptions.ProxyError("x"), True),
        (requests.exceptions.ConnectionError("dropped"), True),
        (auth.TransportError("x"), True),
        (http_error(502), True),
        (api.PermissionDenied("no"), False),
        (auth.RefreshError("invalid_grant"), False),
        (ParseError("bad"), False),
        (http_error(404), False),
    ],
)
def test_transient_failures_are_retried_within_the_budget_and_others_never(
    failure: BaseException, retried: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [0.0]
    monkeypatch.setattr(calls, "_clock", lambda: now[0])
    monkeypatch.setattr(calls, "_sleep", lambda s: now.__setitem__(0, now[0] + s))
    tries = []

    def failing() -> Any:
        tries.append(now[0])
        raise failure

    with calls.within(4.0), pytest.raises(RLHFError) as raised:
        calls.call("get x", failing)
    assert len(tries) > 1 if retried else len(tries) == 1
    assert now[0] <= 4.0
    assert raised.value.code == calls.coded(failure, "get x").code


def test_a_host_that_stays_unreachable_is_given_up_on_before_the_budget(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [0.0]
    monkeypatch.setattr(calls, "_clock", lambda: now[0])
    monkeypatch.setattr(calls, "_sleep", lambda s: now.__setitem__(0, now[0] + s))

    def refused() -> Any:
        raise requests.exceptions.ConnectionError("[Errno 111] refused")

    with pytest.raises(RLHFError) as raised:
        calls.call("get x", refused, budget=600.0)
    assert raised.value.code == "NETWORK_006"
    assert now[0] <= calls.UNREACHABLE_SECONDS + 10


# The endpoint rule: loopback http:// or https://*.googleapis.com, by the parsed host.
ENDPOINTS = [
    ("http://127.0.0.1:8080", True),
    ("http://localhost:8080", True),
    ("http://[::1]:8080", True),
    ("http://127.0.0.2", True),
    ("https://storage.googleapis.com", True),
    ("https://us-central1-aiplatform.googleapis.com:443", True),
    ("http://127.0.0.1.evil.example:80", False),
    ("http://localhost.evil.example", False),
    ("http://127.0.0.1@evil.example", False),
    ("http://evil.example#@127.0.0.1", False),
    ("http://evil.example/127.0.0.1", False),
    ("http://127.1:80", False),
    ("http://0x7f000001", False),
    ("https://evil.example", False),
    ("https://googleapis.com.evil.example", False),
    ("https://evil.example/.googleapis.com", False),
    ("http://storage.googleapis.com", False),  # the token would travel in clear
    ("ftp://127.0.0.1", False),
    ("127.0.0.1:8080", False),
    ("http://127.0.0.1:99999", False),
    ("", False),
]


@pytest.mark.parametrize(("url", "allowed"), ENDPOINTS)
def test_one_rule_decides_every_endpoint_override(url: str, allowed: bool) -> None:
    assert (endpoints.endpoint_problem("RLHF_IAM_ENDPOINT", url) is None) is allowed
    environ = {endpoints.STORAGE_EMULATOR: url}
    if allowed or not url:
        assert endpoints.storage_emulator(environ) == (url or None)
    else:
        with pytest.raises(ConfigError, match="STORAGE_EMULATOR_HOST"):
            endpoints.storage_emulator(environ)
    if url.startswith("http://") and not allowed:
        with pytest.raises(ConfigError):
            VertexTarget(TEST_PROJECT, "us-central1", url)


@pytest.mark.parametrize(
    "url", [u for u, allowed in ENDPOINTS if not allowed and u.startswith("http")]
)
def test_a_storage_emulator_host_that_is_not_loopback_never_gets_a_token(
    url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    project_env: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    token = TokenStandIn().start()
    listener = Listener().start()
    try:
        key = token.write_key(tmp_path / "key.json", TEST_PROJECT)
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))
        monkeypatch.setenv(endpoints.STORAGE_EMULATOR, url)
        for name in ("RESOURCE_MANAGER", "SERVICE_USAGE", "IAM", "ARTIFACT_REGISTRY"):
            monkeypatch.setenv(f"RLHF_{name}_ENDPOINT", f"http://{listener.address}")
        status = cli.main(["doctor", "dev", "--compiled-dir", str(REPO / "compiled")])
        err = capsys.readouterr().err
    finally:
        listener.stop()
        token.stop()
    assert status == 12
    assert "error[CONFIG_002]: STORAGE_EMULATOR_HOST=" in err
    assert token.grants == 0 and listener.connections == 0
