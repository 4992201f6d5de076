"""Every command that reads a gs:// dataset, under network and credential faults: a coded
error with a `fix:`, its own non-zero exit, no traceback, within its bounds.

The datasets live on Google's storage host (no emulator), which the suite's proxy guard
makes unreachable; the service-account key's token endpoint is a stand-in on loopback
that refuses the grant, or a closed port, or answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import TEST_PROJECT
from tests.standins.auth import TokenStandIn, write_service_account_key
from tests.test_cloud_commands_under_faults import closed_port
from vertex_rlhf import cli
from vertex_rlhf.cloud import calls

SERVICE_ACCOUNT = f"rlhf-runner@{TEST_PROJECT}.iam.gserviceaccount.com"
BOUND = 15.0  # seconds (a host that stays unreachable is given up on after 1 s here)
DATA = "gs://rlhf-data-bucket/prefs/*.jsonl"


def commands(tmp: Path) -> dict[str, list[str]]:
    return {
        "validate-data --path": ["validate-data", "--path", DATA, "--kind", "preference"],
        "validate-data --path (one object)": [
            "validate-data",
            "--path",
            "gs://rlhf-data-bucket/prompts/train.jsonl",
            "--kind",
            "prompt",
        ],
        "validate-data ENV": ["validate-data", "dev"],
        "convert-data": [
            "convert-data",
            DATA,
            str(tmp / "out.jsonl"),
            "--kind",
            "preference",
        ],
    }


COMMANDS = list(commands(Path(".")))


def token_refused(tmp: Path, monkeypatch: pytest.MonkeyPatch, token: TokenStandIn) -> None:
    token.refuse = True
    _use_key(tmp, monkeypatch, f"{token.url}/token")


def token_unreachable(tmp: Path, monkeypatch: pytest.MonkeyPatch, _: TokenStandIn) -> None:
    _use_key(tmp, monkeypatch, f"http://127.0.0.1:{closed_port()}/token")


def storage_unreachable(tmp: Path, monkeypatch: pytest.MonkeyPatch, token: TokenStandIn) -> None:
    _use_key(tmp, monkeypatch, f"{token.url}/token")  # a token, then the proxy refuses


def _use_key(tmp: Path, monkeypatch: pytest.MonkeyPatch, token_uri: str) -> None:
    key = tmp / "key.json"
    write_service_account_key(key, SERVICE_ACCOUNT, TEST_PROJECT, token_uri)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key))


Fault = Callable[[Path, pytest.MonkeyPatch, TokenStandIn], None]
FAULTS: dict[str, tuple[Fault, tuple[str, int]]] = {
    "token endpoint refuses": (token_refused, ("AUTH_001", 11)),
    "token endpoint unreachable": (token_unreachable, ("NETWORK_006", 16)),
    "storage host unreachable": (storage_unreachable, ("NETWORK_006", 16)),
}


@pytest.fixture
def token_standin() -> TokenStandIn:
    standin = TokenStandIn().start()
    yield standin  # type: ignore[misc]
    standin.stop()


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("name", COMMANDS)
def test_a_gs_dataset_read_ends_coded_when_the_network_or_token_fails(
    name: str,
    fault: str,
    tmp_path: Path,
    project_env: str,
    token_standin: TokenStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(calls, "UNREACHABLE_SECONDS", 1.0)
    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    arrange, (code, exit_status) = FAULTS[fault]
    arrange(tmp_path, monkeypatch, token_standin)
    started = time.monotonic()
    status = cli.main(commands(tmp_path)[name])
    took = time.monotonic() - started
    out, err = capsys.readouterr()
    assert status == exit_status, out + err
    assert "Traceback" not in out + err
    assert f"error[{code}]" in err and "fix:" in err, err
    assert took < BOUND
    assert not (tmp_path / "out.jsonl").exists()
