"""``rlhf validate-data --no-profile``: the same verdict and counts, without the profile."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SAMPLES
from vertex_rlhf import cli


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:  # type: ignore[type-arg]
    assert cli.main(["validate-data", *args, "--json"]) == 0
    return dict(json.loads(capsys.readouterr().out))


def test_no_profile_for_one_path_keeps_the_report(capsys: pytest.CaptureFixture[str]) -> None:
    path = str(SAMPLES / "preference.jsonl")
    full = run_json(capsys, "--path", path, "--kind", "preference")
    bare = run_json(capsys, "--path", path, "--kind", "preference", "--no-profile")
    assert bare["datasets"]["preference"]["profile"] is None
    assert full["datasets"]["preference"]["profile"]["rows"] > 0
    assert bare["datasets"]["preference"]["report"] == full["datasets"]["preference"]["report"]
    assert cli.main(["validate-data", "--path", path, "--kind", "preference", "--no-profile"]) == 0
    text = capsys.readouterr().out
    assert ": valid" in text and "duplicate prompts" not in text


def test_no_profile_for_an_environment_still_gives_steps(
    capsys: pytest.CaptureFixture[str],
) -> None:
    full = run_json(capsys, "local")
    bare = run_json(capsys, "local", "--no-profile")
    assert bare["steps"] == full["steps"] and bare["valid"] is full["valid"] is True
    assert all(entry["profile"] is None for entry in bare["datasets"].values())
    assert "eval_overlap" not in bare
    assert cli.main(["validate-data", "local", "--no-profile"]) == 0
    assert "Optimal training steps" in capsys.readouterr().out
