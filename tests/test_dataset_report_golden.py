"""``rlhf validate-data``'s text and ``--json`` output are held byte for byte against
goldens written by the code before the dataset report became typed records
(``tests/golden/validate_data/generate.py``), with the same exit statuses."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vertex_rlhf import cli

GOLDEN = Path(__file__).parent / "golden" / "validate_data"
REPO = GOLDEN.parents[2]
CASES: dict[str, list[str]] = json.loads((GOLDEN / "cases.json").read_text(encoding="utf-8"))
CODES: dict[str, int] = json.loads((GOLDEN / "exit_codes.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("json_output", [False, True], ids=["text", "json"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_validate_data_output_matches_the_golden(
    case: str,
    json_output: bool,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(REPO)
    golden = f"{case}.json" if json_output else f"{case}.txt"
    args = ["validate-data", *CASES[case], *(["--json"] if json_output else [])]
    assert cli.main(args) == CODES[golden]
    out = capsys.readouterr().out.replace(str(REPO), "<ROOT>")
    assert out == (GOLDEN / golden).read_text(encoding="utf-8")


def test_every_golden_has_a_case_and_an_exit_status() -> None:
    written = {p.name for p in GOLDEN.glob("*.txt")} | {p.name for p in GOLDEN.glob("*.json")}
    expected = {f"{case}{suffix}" for case in CASES for suffix in (".txt", ".json")}
    assert written - {"cases.json", "exit_codes.json"} == expected == set(CODES)


def test_the_record_gives_back_the_shipped_report_key_for_key(tmp_path: Path) -> None:
    from vertex_rlhf.data.report import REPORT_KEYS, DatasetCheck
    from vertex_rlhf.data.rules import new_dataset_report, validate_dataset_files

    assert tuple(new_dataset_report("x", "prompt")) == REPORT_KEYS
    bad = GOLDEN / "bad_preference.jsonl"
    for shipped in (
        validate_dataset_files(str(bad), "preference", 2),
        validate_dataset_files(str(REPO / "samples" / "*prompt.jsonl"), "prompt"),
    ):
        check = DatasetCheck.from_report(shipped)
        assert check.report() == shipped and list(check.report()) == list(shipped)
        assert check.valid is (shipped["errors"] == 0)
