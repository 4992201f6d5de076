"""Row rules and the streaming file validator, on the samples and on bad inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLE_SETS, SAMPLES, write_jsonl
from vertex_rlhf.data.rules import (
    check_lines,
    check_row,
    new_dataset_report,
    report_summary,
    validate_dataset_files,
)

# Every rule holds whichever parser reads the rows: each test runs with orjson and without.
pytestmark = pytest.mark.usefixtures("json_parser")

TEXT_PREF = {"input_text": "a post", "candidate_0": "good", "candidate_1": "bad", "choice": 0}
CHAT = [{"author": "user", "content": "hi"}]
CHAT_PREF = {"messages": CHAT, "candidate_0": "a", "candidate_1": "b", "choice": 1}


@pytest.mark.parametrize(
    ("name", "kind", "rows", "layout"),
    [*SAMPLE_SETS, ("prompt.jsonl", "eval", 100, "prompt text")],
)
def test_shipped_samples_are_valid(name: str, kind: str, rows: int, layout: str) -> None:
    report = validate_dataset_files(str(SAMPLES / name), kind)
    assert report["errors"] == 0, report["problems"]
    assert (report["rows"], report["layout"]) == (rows, layout)
    assert report_summary(report).splitlines()[0].endswith("valid")


def with_(row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    updated = {**row, **changes}
    return {k: v for k, v in updated.items() if v is not DROP}


DROP = object()


@pytest.mark.parametrize(
    ("row", "kind", "field", "problem"),
    [
        ([1, 2], "preference", "(row)", "must be a JSON object, got array"),
        ("text", "prompt", "(row)", 'got string "text"'),
        (with_(TEXT_PREF, choice="1"), "preference", "choice", 'got string "1"'),
        (with_(TEXT_PREF, choice=True), "preference", "choice", "got boolean true"),
        (with_(TEXT_PREF, choice=2), "preference", "choice", "got integer 2"),
        (with_(TEXT_PREF, choice=None), "preference", "choice", "got null"),
        (with_(TEXT_PREF, choice=DROP), "preference", "choice", "missing"),
        (with_(TEXT_PREF, candidate_1=DROP), "preference", "candidate_1", "missing"),
        (with_(TEXT_PREF, candidate_0=""), "preference", "candidate_0", "must not be empty"),
        (with_(TEXT_PREF, candidate_0="  \t"), "preference", "candidate_0", "must not be empty"),
        (with_(TEXT_PREF, candidate_1=7), "preference", "candidate_1", "got integer 7"),
        (with_(TEXT_PREF, input_text=None), "preference", "input_text", "got null"),
        (with_(TEXT_PREF, input_text=DROP), "preference", "input_text", "chat rows need messages"),
        ({"input_text": ""}, "prompt", "input_text", "must not be empty"),
        ({"input_text": "x", "messages": CHAT}, "prompt", "input_text", "not both"),
        ({"messages": []}, "prompt", "messages", "got an empty array"),
        ({"messages": "hi"}, "prompt", "messages", 'got string "hi"'),
        ({"messages": ["hi"]}, "prompt", "messages[0]", "must be an object"),
        (
            {"messages": [{"author": "bot", "content": "x"}]},
            "prompt",
            "messages[0].author",
            'must be "user" or "assistant", got string "bot"',
        ),
        (
            {"messages": [{"content": "x"}]},
            "prompt",
            "messages[0].author",
            "got nothing",
        ),
        (
            {"messages": [{"author": "user", "content": " "}]},
            "prompt",
            "messages[0].content",
            "non-empty string",
        ),
        (
            {"messages": [{"author": "assistant", "content": "x"}, *CHAT]},
            "prompt",
            "messages[0].author",
            "first message must be from",
        ),
        (
            {"messages": [*CHAT, {"author": "assistant", "content": "x"}]},
            "prompt",
            "messages[1].author",
            "last message must be from",
        ),
        ({"messages": CHAT, "context": 5}, "prompt", "context", "must be a string"),
        (with_(CHAT_PREF, choice=-1), "preference", "choice", "got integer -1"),
        (with_(TEXT_PREF, candidate_1=DROP), "eval", "candidate_1", "missing"),
    ],
)
def test_bad_rows(row: Any, kind: str, field: str, problem: str) -> None:
    layout, got_field, got_problem = check_row(row, kind)
    assert layout == ""
    assert got_field == field
    assert problem in got_problem


def test_good_rows_report_their_layout() -> None:
    assert check_row(TEXT_PREF, "preference") == ("text", "", "")
    assert check_row(CHAT_PREF, "preference") == ("chat", "", "")
    assert check_row({"messages": CHAT, "context": "be kind"}, "prompt") == ("chat", "", "")
    assert check_row({"input_text": "x", "extra": 1}, "prompt") == ("text", "", "")
    assert check_row({"input_text": "x"}, "eval") == ("prompt text", "", "")
    assert check_row(CHAT_PREF, "eval") == ("preference chat", "", "")


def test_file_problems_name_file_line_and_field(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "pref.jsonl",
        [
            json.dumps(TEXT_PREF),
            json.dumps(with_(TEXT_PREF, choice="1")),
            "{not json",
            json.dumps(TEXT_PREF),
        ],
    )
    report = validate_dataset_files(str(path), "preference")
    assert report["rows"] == 4
    assert report["errors"] == 2
    assert report["problems"][0] == (
        f'{path}:2: choice: must be the integer 0 or 1, got string "1"'
    )
    assert report["problems"][1].startswith(f"{path}:3: invalid JSON")


def test_first_problems_shown_all_counted(tmp_path: Path) -> None:
    bad = json.dumps(with_(TEXT_PREF, choice=3))
    path = write_jsonl(tmp_path / "p.jsonl", [bad] * 12)
    report = validate_dataset_files(str(path), "preference", max_reported=3)
    assert report["errors"] == 12
    assert len(report["problems"]) == 3
    summary = report_summary(report)
    assert "12 problem(s)" in summary and "... and 9 more" in summary


def test_mixed_layouts_in_one_dataset_fail(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a.jsonl", [json.dumps(TEXT_PREF)])
    write_jsonl(tmp_path / "b.jsonl", [json.dumps(CHAT_PREF)])
    report = validate_dataset_files(str(tmp_path / "*.jsonl"), "preference")
    assert report["errors"] == 1
    assert "rows are chat but earlier files are text" in report["problems"][0]
    assert report["problems"][0].startswith(f"{tmp_path / 'b.jsonl'}: ")


def test_glob_reads_every_file_in_order(tmp_path: Path) -> None:
    for name, count in (("b.jsonl", 3), ("a.jsonl", 2)):
        write_jsonl(tmp_path / "d" / name, [json.dumps({"input_text": "x"})] * count)
    report = validate_dataset_files(str(tmp_path / "d" / "*.jsonl"), "prompt")
    assert [Path(f).name for f, _ in report["files"]] == ["a.jsonl", "b.jsonl"]
    assert [rows for _, rows in report["files"]] == [2, 3]
    assert report["rows"] == 5


def test_glob_matching_nothing(tmp_path: Path) -> None:
    report = validate_dataset_files(str(tmp_path / "*.jsonl"), "prompt")
    assert report["errors"] == 1
    assert "matches no files" in report["problems"][0]


@pytest.mark.parametrize("content", [b"", b"\n\n", b"  \r\n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = write_jsonl(tmp_path / "e.jsonl", content)
    report = validate_dataset_files(str(path), "prompt")
    assert report["errors"] == 1
    assert report["problems"] == [f"{path}: file is empty (no rows)"]


def test_byte_order_mark_is_an_error(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "bom.jsonl", b'\xef\xbb\xbf{"input_text": "x"}\n')
    report = validate_dataset_files(str(path), "prompt")
    assert report["errors"] == 1
    assert "byte-order mark" in report["problems"][0]
    assert report["problems"][0].startswith(f"{path}:1:")


def test_invalid_utf8(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "u.jsonl", b'{"input_text": "ok"}\n{"input_text": "\xff\xfe"}\n')
    report = validate_dataset_files(str(path), "prompt")
    assert report["errors"] == 1
    assert report["problems"][0].startswith(f"{path}:2: ")
    assert "not valid UTF-8" in report["problems"][0]


def test_crlf_and_blank_last_line_are_accepted(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "c.jsonl", b'{"input_text": "a"}\r\n{"input_text": "b"}\r\n\r\n')
    report = validate_dataset_files(str(path), "prompt")
    assert (report["errors"], report["rows"], report["blank_lines"]) == (0, 2, 1)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown dataset kind"):
        validate_dataset_files("x", "sft")


@pytest.mark.parametrize("choice", ["1.0", "0.0", "1e0", "true", '"1"', "2", "null"])
def test_a_choice_that_is_not_the_integer_0_or_1_is_refused(choice: str) -> None:
    """As raw JSON text: 1.0 parses to a float, which GCPC would read as a label id."""
    row = '{"input_text": "q", "candidate_0": "a", "candidate_1": "b", "choice": ' + choice + "}"
    report = new_dataset_report("pref.jsonl", "preference")
    good = b'{"input_text": "q", "candidate_0": "a", "candidate_1": "b", "choice": 1}'
    check_lines(report, "pref.jsonl", [good, row.encode()])
    assert report["errors"] == 1, report
    [problem] = report["problems"]
    assert problem.startswith("pref.jsonl:2: choice: must be the integer 0 or 1, got ")
