"""One verdict whatever parses the rows: explicit rules for what orjson and json disagree on,
the real cause of files that are not JSONL, and reports that always print."""

from __future__ import annotations

import codecs
import gzip
import json
import random
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SAMPLES, write_jsonl
from vertex_rlhf.data.rules import (
    check_lines,
    new_dataset_report,
    printable,
    report_summary,
    validate_dataset_files,
)

pytestmark = pytest.mark.usefixtures("json_parser")

PAIR = '{"input_text": "p", "candidate_0": "a", "candidate_1": "b"'
GOOD = '{"input_text": "a post", "candidate_0": "good", "candidate_1": "bad", "choice": 0}'


def verdict(lines: list[bytes], kind: str = "preference") -> dict[str, Any]:
    report = new_dataset_report("d.jsonl", kind, max_reported=20)
    check_lines(report, "d.jsonl", lines)
    return report


def only_problem(lines: list[bytes], kind: str = "preference") -> str:
    report = verdict(lines, kind)
    assert report["errors"] == 1, report["problems"]
    return str(report["problems"][0])


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        (b'{"input_text": "x", "extra": NaN}', "NaN is not valid JSON"),
        (b'{"input_text": "x", "extra": Infinity}', "Infinity is not valid JSON"),
        (b'{"input_text": "x", "extra": -Infinity}', "-Infinity is not valid JSON"),
        (b'{"input_text": "x", "extra": 1e400}', "the number 1e400 is out of range"),
        (b'{"input_text": "bad \\ud800 text"}', "lone UTF-16 surrogate escape"),
        (b'{"input_text": "bad \\udc00\\ud800"}', "lone UTF-16 surrogate escape"),
        (b'{"input_text": "x", "\\ud800": 1}', "lone UTF-16 surrogate escape"),
        (b'{"input_text": "cesu \xed\xa0\x80"}', "(CESU-8) at byte 22"),
        (b'{"input_text": "latin \xe9"}', "is not valid UTF-8 (byte 23)"),
        (b'{"input_text": "x",}', "invalid JSON at column 20"),
        (b'{"input_text": "x"} trailing', "invalid JSON at column 21: Extra data"),
        (b"[" * 2000 + b"]" * 2000, "more than 64 levels deep"),
        (b'{"input_text": "x", "extra": ' + b"[" * 70 + b"]" * 70 + b"}", "64 levels"),
    ],
)
def test_rows_refused_by_either_parser_are_refused_by_both(line: bytes, problem: str) -> None:
    found = only_problem([line], "prompt")
    assert found.startswith("d.jsonl:1"), found
    assert problem in found
    assert "line 1 column" not in found  # columns are counted within the line


def test_a_byte_order_mark_in_mid_file_is_named(tmp_path: Path) -> None:
    good = GOOD.encode()
    found = only_problem([good, b"\xef\xbb\xbf" + good, good])
    assert found.startswith("d.jsonl:2: a UTF-8 byte-order mark in the middle of the file")


@pytest.mark.parametrize(
    "line",
    [
        PAIR + ', "choice": 0, "choice": 1}',
        PAIR + ', "choice": 0, "choice" : 1}',
        PAIR + ',"choice":0,\t"choice"\t:1}',
        PAIR + ', "choice": 0, "\\u0063hoice": 1}',
        PAIR.replace('"p"', '"Human: hi. Assistant:"') + ', "choice": 0, "choice" : 1}',
        '{"messages": [{"author": "user", "author": "assistant", "content": "hi"}],'
        ' "candidate_0": "a", "candidate_1": "b", "choice": 1}',
    ],
)
def test_duplicate_keys_are_refused(line: str) -> None:
    found = only_problem([line.encode()])
    assert "appears twice in one object" in found
    assert found.split(": ")[1] in ("choice", "author")


@pytest.mark.parametrize(
    "row",
    [
        {"input_text": 'said \\"choice\\": 1', "candidate_0": "a", "candidate_1": "b", "choice": 0},
        {
            "input_text": '"choice": 1, "choice": 0',
            "candidate_0": "x",
            "candidate_1": "y",
            "choice": 1,
        },
        {"input_text": "p", "candidate_0": '{"a": 1, "a": 2}', "candidate_1": "b", "choice": 0},
    ],
)
def test_key_like_text_inside_values_is_not_a_duplicate(row: dict[str, Any]) -> None:
    for line in (json.dumps(row), json.dumps(row, separators=(",", ":")), json.dumps(row) + " "):
        assert verdict([line.encode()])["errors"] == 0


def test_valid_surrogate_pairs_and_big_numbers_read_the_same() -> None:
    lines = [
        b'{"input_text": "emoji \\ud83d\\ude00", "candidate_0": "a", "candidate_1": "b",'
        b' "choice": 0, "score": 123456789012345678901234567890, "f": 1.5e300}',
    ]
    assert verdict(lines)["errors"] == 0
    big = PAIR.encode() + b', "choice": 99999999999999999999}'
    assert "got number 1e+20" in only_problem([big])


def test_rows_in_the_prompt_chosen_rejected_form_point_to_convert_data() -> None:
    preference = only_problem([b'{"prompt": "p", "chosen": "a", "rejected": "b"}'])
    assert "prompt/chosen/rejected form" in preference
    assert "make convert-data IN=... OUT=... KIND=preference" in preference
    prompt = only_problem([b'{"prompt": "p"}'], "prompt")
    assert "KIND=prompt" in prompt


@pytest.mark.parametrize(
    ("content", "cause"),
    [
        (gzip.compress(b'{"input_text": "x"}\n' * 50), "is gzip-compressed"),
        (codecs.BOM_UTF16_LE + '{"input_text": "x"}\n'.encode("utf-16-le") * 5, "UTF-16"),
        ('{"input_text": "x"}\n'.encode("utf-16-be") * 5, "UTF-16"),
        ('{"input_text": "x"}\n'.encode("utf-32") * 5, "UTF-32"),
    ],
    # Named ids: a gzip stream holds its time, and xdist's workers must collect alike.
    ids=["gzip", "utf-16-le-bom", "utf-16-be", "utf-32"],
)
def test_files_that_are_not_utf8_jsonl_name_the_real_cause_once(
    tmp_path: Path, content: bytes, cause: str
) -> None:
    path = write_jsonl(tmp_path / "data.jsonl", content)
    report = validate_dataset_files(str(path), "prompt")
    assert report["errors"] == 1, report["problems"]
    assert report["problems"][0].startswith(f"{path}: ")
    assert cause in report["problems"][0]


def test_a_directory_asks_for_a_glob(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "shards" / "a.jsonl", ['{"input_text": "x"}'])
    for given in (str(tmp_path / "shards"), str(tmp_path / "shards") + "/"):
        report = validate_dataset_files(given, "prompt")
        assert report["errors"] == 1
        assert "is a directory; give a glob such as" in report["problems"][0]
        assert f"{tmp_path / 'shards'}/*.jsonl" in report["problems"][0]


def test_printable_escapes_what_the_stream_cannot_encode() -> None:
    text = 'bad\udcff.jsonl: got string "é"'
    assert printable(text, "utf-8") == 'bad\\udcff.jsonl: got string "é"'
    assert printable(text, "ascii") == 'bad\\udcff.jsonl: got string "\\xe9"'
    assert printable("plain", "no-such-codec") == "plain"
    assert printable("é", None) == "é"


def test_summary_lists_the_files_read(tmp_path: Path) -> None:
    for i in range(3):
        write_jsonl(tmp_path / f"p{i}.jsonl", ['{"input_text": "x"}'] * (i + 1))
    summary = report_summary(validate_dataset_files(str(tmp_path / "p*.jsonl"), "prompt"), 2)
    assert summary.splitlines()[1:] == [
        f"  file {tmp_path / 'p0.jsonl'}: 1 rows",
        f"  file {tmp_path / 'p1.jsonl'}: 2 rows",
        "  ... and 1 more files",
    ]


def mutations(seed: int, count: int) -> list[bytes]:
    """Lines near valid rows: characters and bytes that parsers tend to disagree on."""
    rng = random.Random(seed)
    base = [line for line in (SAMPLES / "preference.jsonl").read_bytes().splitlines()[:20]]
    base += (SAMPLES / "chat_prompt.jsonl").read_bytes().splitlines()[:10]
    inserts = [
        b"NaN", b"-Infinity", b"\\ud800", b"\\udfff\\ud800", b"\xed\xa0\x80", b"\xef\xbb\xbf",
        b"\xff", b"\\u0000", b"1e999", b"99999999999999999999999", b'"choice": 1, ', b",",
        b"\t", b"\x00", b"\\", b'"', b"[", b"{", b"}", b"\\/", b"\xc0\xaf", b"\x7f", b"-0",
    ]  # fmt: skip
    out = []
    for _ in range(count):
        line = bytearray(rng.choice(base))
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(line) + 1)
            if rng.random() < 0.2:
                del line[at : at + rng.randint(1, 4)]
            else:
                line[at:at] = rng.choice(inserts)
        out.append(bytes(line))
    return out


def test_both_parsers_give_the_same_report_on_mutated_rows(
    json_parser: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if json_parser == "json":
        pytest.skip("compares both parsers itself")
    lines = mutations(seed=8, count=3000)
    for kind in ("preference", "prompt"):
        with_orjson = verdict(lines, kind)
        monkeypatch.setitem(sys.modules, "orjson", None)
        without = verdict(lines, kind)
        monkeypatch.delitem(sys.modules, "orjson")
        assert with_orjson["errors"] > 100  # the mutations do hit the rules
        for key in ("rows", "errors", "layout", "blank_lines"):
            assert with_orjson[key] == without[key], key
        for a, b in zip(with_orjson["problems"], without["problems"], strict=True):
            assert a == b
        mismatched = []
        for number, line in enumerate(lines, 1):
            one = verdict([line], kind)
            monkeypatch.setitem(sys.modules, "orjson", None)
            other = verdict([line], kind)
            monkeypatch.delitem(sys.modules, "orjson")
            if one["problems"] != other["problems"]:
                mismatched.append((number, line, one["problems"], other["problems"]))
        assert not mismatched, mismatched[:3]


# A row cut short or broken, and the column an editor shows for the error: one past the
# end of a cut row, else where the offending character is (counted in characters).
CUT = '{"input_text": "summarize this", "c": 1,'
BROKEN_AT = [
    (CUT, len(CUT) + 1),
    ('{"input_text": "a post", "choice": 1,', 38),
    ('{"input_text":', 15),
    ('{"input_text": "unterminated', 16),
    ("{", 2),
    ('{"input_text": "x" "choice": 1}', 20),
    ('{"input_text": "café 東京",}', 26),
    ('{"input_text": "x"} trailing', 21),
]


@pytest.mark.parametrize("end", ["\n", "\r\n", ""])
@pytest.mark.parametrize(("line", "column"), BROKEN_AT)
def test_a_json_error_is_reported_at_the_column_an_editor_shows(
    tmp_path: Path, line: str, column: int, end: str
) -> None:
    """json counts the line end as a new line: a cut row once read "column 1"."""
    from vertex_rlhf.data import files

    path = write_jsonl(tmp_path / "d.jsonl", f"{GOOD}\n{line}{end}".encode())  # "": last line
    component = validate_dataset_files(str(path), "preference")
    cli = files.validate(str(path), "preference")
    assert component == cli
    [problem] = component["problems"]
    assert problem.startswith(f"{path}:2: invalid JSON at column {column}: "), problem
