"""convert-data refuses what validate-data refuses, in its words, and writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

SEED_ROW = b'{"prompt": "p", "chosen": "a", "rejected": "r"}'


@pytest.mark.parametrize(
    ("line", "problem"),
    [  # what the validator says of the same line, not "(row): must be a JSON object"
        (
            b'{"prompt": "p", "chosen": "a", "chosen": "b", "rejected": "r"}',
            "in.jsonl:2: chosen: appears twice in one object",
        ),
        (
            b'{"prompt": "p", "\\u0063hosen": "a", "chosen": "b", "rejected": "r"}',
            "in.jsonl:2: chosen: appears twice",
        ),
        (
            b'{"prompt": "p", "chosen": "a", "rejected": "r", "x": NaN}',
            "in.jsonl:2: NaN is not valid JSON",
        ),
        (
            b'{"prompt": "p", "chosen": "a", "rejected": "r", "x": 1e400}',
            "in.jsonl:2: the number 1e400 is out of range",
        ),
        (
            b'{"prompt": "p\\ud800", "chosen": "a", "rejected": "r"}',
            "in.jsonl:2: holds a lone UTF-16 surrogate",
        ),
        (
            b'{"prompt": "p", "chosen": "a" "rejected": "r"}',
            "in.jsonl:2: invalid JSON at column 31: Expecting ',' delimiter",
        ),
        (
            b"\xef\xbb\xbf" + SEED_ROW,
            "in.jsonl:2: a UTF-8 byte-order mark in the middle of the file",
        ),
        (
            b'{"prompt": "p", "chosen": "a", "rejected": "r", "x": ' + b"[" * 70 + b"]" * 70 + b"}",
            "in.jsonl:2: (row): nests arrays or objects more than 64",
        ),
    ],
)
def test_convert_refuses_what_validation_refuses_in_its_words(
    tmp_path: Path, line: bytes, problem: str
) -> None:
    """convert-data once kept the last of two equal keys silently (the validator refuses
    the row as ambiguous) and called every unparsable line "(row): must be a JSON object"."""
    from vertex_rlhf.data.convert import convert
    from vertex_rlhf.errors import DataError

    source = tmp_path / "in.jsonl"
    source.write_bytes(SEED_ROW + b"\n" + line + b"\n" + SEED_ROW + b"\n")
    with pytest.raises(DataError) as error:
        convert(str(source), str(tmp_path / "out.jsonl"), "preference")
    assert problem in str(error.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]
    rejects_path = tmp_path / "rejects.jsonl"
    stats = convert(
        str(source),
        str(tmp_path / "out.jsonl"),
        "preference",
        skip_invalid=True,
        rejects=str(rejects_path),
    )
    assert (stats.read, stats.rejected, stats.written["train"]) == (3, 1, 2)
    rejects = rejects_path.read_text()
    assert problem.split(": ", 1)[1] in rejects.replace('\\"', '"')


@pytest.mark.parametrize(
    ("head", "problem"),
    [
        (b"\x1f\x8b\x08\x00\x00\x00", "in.jsonl: is gzip-compressed"),
        (b"\xff\xfe{\x00", "in.jsonl: is UTF-16 or UTF-32 encoded"),
    ],
)
def test_convert_names_a_file_that_is_not_jsonl(tmp_path: Path, head: bytes, problem: str) -> None:
    from vertex_rlhf.data.convert import convert
    from vertex_rlhf.errors import DataError

    source = tmp_path / "in.jsonl"
    source.write_bytes(head + b"\n" + SEED_ROW + b"\n")
    for skip in (False, True):
        with pytest.raises(DataError) as error:
            convert(str(source), str(tmp_path / "out.jsonl"), "preference", skip_invalid=skip)
        assert problem in str(error.value)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl"]


def test_convert_names_a_byte_order_mark_at_the_start(tmp_path: Path) -> None:
    from vertex_rlhf.data.convert import convert
    from vertex_rlhf.errors import DataError

    source = tmp_path / "in.jsonl"
    source.write_bytes(b"\xef\xbb\xbf" + SEED_ROW + b"\n" + SEED_ROW + b"\n")
    with pytest.raises(DataError, match=r"in\.jsonl:1: file starts with a UTF-8 byte-order mark"):
        convert(str(source), str(tmp_path / "out.jsonl"), "preference")
