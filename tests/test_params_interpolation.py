"""A value produced by interpolation is checked like a literal one."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO
from vertex_rlhf.config.params import load_params
from vertex_rlhf.errors import ConfigError

TEXT_KEYS = ["training.instruction", "training.model_display_name", "vertex_ai.experiment"]


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize("key", TEXT_KEYS)
@pytest.mark.parametrize(
    ("interpolation", "gives"),
    [
        ('${oc.decode:"123"}', "the number 123"),
        ('${oc.decode:"1.10"}', "the number 1.1"),
        ('${oc.decode:"true"}', "the boolean true"),
        ("${oc.decode:${oc.env:RLHF_TEST_NUMBER}}", "the number 5"),
    ],
)
def test_a_number_or_boolean_from_interpolation_in_a_text_key_is_refused_as_an_override(
    monkeypatch: pytest.MonkeyPatch, key: str, interpolation: str, gives: str
) -> None:
    monkeypatch.setenv("RLHF_TEST_NUMBER", "5")
    with pytest.raises(ConfigError) as caught:
        load_params("dev", [f"{key}={interpolation}"], REPO / "params")
    assert f"command-line override: {key}: {interpolation!r} gives {gives}" in str(caught.value)
    assert "takes text" in str(caught.value)


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize(
    ("line", "gives"),
    [
        ("  instruction: ${oc.decode:'123'}", "the number 123"),
        ("  model_display_name: ${oc.decode:'false'}", "the boolean false"),
    ],
)
def test_a_number_from_interpolation_in_a_file_names_the_file_line_and_key(
    tmp_path: Path, line: str, gives: str
) -> None:
    (tmp_path / "base.yaml").write_bytes((REPO / "params" / "base.yaml").read_bytes())
    (tmp_path / "team.yaml").write_text(
        "dataset:\n  preference_dataset: gs://my-bucket/p.jsonl\n"
        "  prompt_dataset: gs://my-bucket/q.jsonl\ntraining:\n"
        f"  large_model_reference: llama-2-7b\n{line}\n",
        encoding="utf-8",
    )
    key = "training." + line.split(":")[0].strip()
    with pytest.raises(ConfigError) as caught:
        load_params(str(tmp_path / "team.yaml"))
    assert f"{tmp_path / 'team.yaml'}:6: {key}: " in str(caught.value)
    assert gives in str(caught.value)


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize(
    ("interpolation", "value"),
    [
        ("${oc.env:RLHF_TEST_TEXT}", "hello"),
        ("${oc.env:RLHF_TEST_NUMBER}", "5"),  # oc.env gives text: text stays text
        ("${oc.decode:\"'123'\"}", "123"),
        ("prefix-${oc.env:RLHF_TEST_NUMBER}", "prefix-5"),
    ],
)
def test_interpolations_that_give_text_pass(
    monkeypatch: pytest.MonkeyPatch, interpolation: str, value: str
) -> None:
    monkeypatch.setenv("RLHF_TEST_TEXT", "hello")
    monkeypatch.setenv("RLHF_TEST_NUMBER", "5")
    params = load_params("dev", [f"training.instruction={interpolation}"], REPO / "params")
    assert params.training.instruction == value


@pytest.mark.usefixtures("project_env")
@pytest.mark.parametrize(
    ("override", "key"),
    [
        ('vertex_ai.labels.team=${oc.decode:"7"}', "vertex_ai.labels.team"),
        ("vertex_ai.notify_emails=['${oc.decode:\"7\"}']", "vertex_ai.notify_emails.0"),
    ],
)
def test_label_values_and_list_items_from_interpolation_are_checked_too(
    override: str, key: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_params("dev", [override], REPO / "params")
    assert f"{key}: " in str(caught.value) and "gives the number 7" in str(caught.value)
