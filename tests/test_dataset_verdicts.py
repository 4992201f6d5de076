"""The CLI and the pipeline component give the same verdict, the same problems and the same
file list on a shared corpus; the component runs in kfp.local (SubprocessRunner) with orjson
hidden, as on an image without it, while the CLI runs here with it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kfp import local

from components.validate_dataset import validate_dataset
from tests.test_dataset_paths import write_corpus
from vertex_rlhf import cli

PATTERNS = [
    ("c/*.jsonl", "preference"),
    ("c/data[1].jsonl", "preference"),
    ("c/*/c.jsonl", "preference"),
    ("c/bad/*.jsonl", "preference"),
    ("c/bad/dup.jsonl", "preference"),
    ("c/sub", "prompt"),
    ("c/**/*.jsonl", "prompt"),
    ("c/none-*.jsonl", "prompt"),
]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    write_corpus(root)
    return root


@pytest.fixture(scope="module")
def kfp_local_without_orjson(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    hide = tmp_path_factory.mktemp("no-orjson")
    (hide / "orjson.py").write_text("raise ImportError('orjson is hidden for this test')\n")
    patch = pytest.MonkeyPatch()
    patch.setenv("PYTHONPATH", str(hide))  # the task's subprocess cannot import orjson
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path_factory.mktemp("kfp-local")),
    )
    yield
    patch.undo()


def summary_parts(text: str, dataset: str) -> tuple[list[str], list[str]]:
    """Problems and files from the summary the component printed for ``dataset``."""
    lines = [x[4:] if x.startswith("    ") else x for x in text.splitlines()]  # kfp's indent
    start = next(i for i, x in enumerate(lines) if x.startswith(dataset))
    problems, found = [], []
    for text_line in lines[start + 1 :]:
        if not text_line.startswith("  "):
            break
        if text_line.startswith("  file "):
            found.append(text_line[len("  file ") :].rsplit(": ", 1)[0])
        elif not text_line.startswith("  ... and"):
            problems.append(text_line[2:])
    return problems, found


@pytest.mark.usefixtures("kfp_local_without_orjson")
@pytest.mark.parametrize(("pattern", "kind"), PATTERNS)
def test_cli_and_component_agree(
    corpus: Path,
    pattern: str,
    kind: str,
    capfd: pytest.CaptureFixture[str],
) -> None:
    path = f"{corpus}/{pattern}"
    capfd.readouterr()
    status = cli.main(["validate-data", "--path", path, "--kind", kind, "--json"])
    report: dict[str, Any] = json.loads(capfd.readouterr().out)["datasets"][kind]["report"]
    try:
        task = validate_dataset(kind=kind, dataset=path, max_reported=5)
        passed = True
    except RuntimeError:
        passed = False
    output = capfd.readouterr()
    assert "orjson is hidden" not in output.out + output.err  # the fallback ran, silently
    assert passed == (status == 0) == (report["errors"] == 0)
    problems, found = summary_parts(output.out + output.err, f"{kind} dataset {path}")
    assert found == [name for name, _ in report["files"]]
    assert problems == report["problems"]
    if passed:
        assert task.outputs == {"rows": report["rows"], "layout": report["layout"]}


@pytest.mark.usefixtures("kfp_local_without_orjson")
def test_a_report_the_task_cannot_encode_is_printed_escaped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PYTHONIOENCODING", "ascii")  # the task's stdout cannot print "é"
    folder = tmp_path / "d"
    folder.mkdir()
    row = {"input_text": "p", "candidate_0": "a", "candidate_1": "b", "choice": "é"}
    # A file name that is not UTF-8: Python holds it as a lone surrogate.
    with open(bytes(folder) + b"/bad\xff.jsonl", "wb") as handle:
        handle.write(json.dumps(row).encode() + b"\n")
    with pytest.raises(RuntimeError, match="FAILURE"):
        validate_dataset(kind="preference", dataset=f"{folder}/*.jsonl")
    output = capfd.readouterr()
    text = output.out + output.err
    assert f"{folder}/bad\\udcff.jsonl:1: choice: must be the integer 0 or 1" in text
    assert 'got string "\\xe9"' in text
    assert "UnicodeEncodeError" not in text
