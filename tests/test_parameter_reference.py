"""docs/parameters.md is generated from the schema and fails the suite when stale."""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import pytest

import vertex_rlhf.original.layout as legacy
from tests.conftest import REPO
from vertex_rlhf import cli
from vertex_rlhf.config import catalog, params
from vertex_rlhf.template import reference, signature
from vertex_rlhf.views import reference as views_reference

DOC = REPO / "docs" / "parameters.md"


def schema_keys() -> list[str]:
    return [
        f"{section.name}.{f.name}"
        for section in dataclasses.fields(params.RLHFParams)
        for f in dataclasses.fields(section.default_factory)  # type: ignore[arg-type]
    ]


def render() -> str:
    rows = reference.rows(
        signature.current_template_path(REPO / "compiled"), REPO / "params" / "base.yaml"
    )
    return views_reference.render(rows, legacy.NOTES)


def test_the_committed_reference_is_up_to_date() -> None:
    assert DOC.read_text(encoding="utf-8") == render(), "run `make docs` and commit docs/"


def test_every_schema_key_is_listed_with_a_description() -> None:
    rows = reference.rows(
        signature.current_template_path(REPO / "compiled"), REPO / "params" / "base.yaml"
    )
    assert [row["key"] for row in rows] == schema_keys()
    undescribed = [row["key"] for row in rows if not row["description"]]
    assert undescribed == [], "describe these keys (schema comment or reference.DESCRIPTIONS)"
    by_key = {row["key"]: row for row in rows}
    assert by_key["vertex_ai.project_id"]["default"] == "required"
    assert by_key["training.kl_coeff"]["default"] == "`0.1`"
    assert by_key["training.large_model_reference"]["base"] == "`llama-2-7b`"
    assert by_key["training.reinforcement_learning_rate_multiplier"]["base"] == ""
    assert by_key["vertex_ai.labels"]["description"].startswith("extra run labels")
    assert (
        "dataset.preference_size" in by_key
        and "steps offline" in by_key["dataset.prompt_size"]["description"]
    )


def test_allowed_values_and_original_keys_come_from_their_tables() -> None:
    text = render()
    assert ", ".join(catalog.REGIONS) in text and ", ".join(catalog.tunable_models()) in text
    assert f"One of: {', '.join(catalog.tunable_models())} |" in text  # no retired model
    for old in legacy.NOTES:
        assert f"| `{old}` |" in text


def test_a_schema_change_makes_it_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclasses.dataclass
    class Training(params.TrainingParams):
        # A new knob for the test.
        new_knob: int = 3

    fields = {f.name: f for f in dataclasses.fields(params.RLHFParams)}
    changed = dataclasses.make_dataclass(
        "RLHFParams",
        [
            ("dataset", params.DatasetParams, fields["dataset"]),
            ("training", Training, dataclasses.field(default_factory=Training)),
            ("vertex_ai", params.VertexParams, fields["vertex_ai"]),
        ],
    )
    monkeypatch.setattr(params, "RLHFParams", changed)
    text = render()
    assert text != DOC.read_text(encoding="utf-8")
    assert "| `training.new_knob` | int | `3` |  | A new knob for the test |" in text


def test_reference_command_writes_and_checks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "docs" / "parameters.md"
    args = [
        "reference",
        "--output",
        str(output),
        "--params-dir",
        str(REPO / "params"),
        "--compiled-dir",
        str(REPO / "compiled"),
    ]
    assert cli.main([*args, "--check"]) == 13
    assert "is stale against the schema" in capsys.readouterr().err
    assert cli.main(args) == 0 and output.read_text() == DOC.read_text()
    assert cli.main([*args, "--check"]) == 0
    assert cli.main(args) == 0 and "(unchanged)" in capsys.readouterr().out
    shutil.copyfile(output, tmp_path / "copy.md")
    output.write_text(output.read_text() + "edited\n")
    assert cli.main([*args, "--check"]) == 13


def test_make_docs_calls_the_reference_command() -> None:
    import subprocess

    result = subprocess.run(
        ["make", "-s", "--no-print-directory", "-n", "docs"],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
    )
    assert ".venv/bin/rlhf reference" in result.stdout.splitlines()[-1]
