"""A key twice in one object is refused (parsers keep only the last), and looking for one
costs next to nothing on rows that have none."""

from __future__ import annotations

import json
import random

import pytest

from vertex_rlhf.data import jsonl


def test_escaped_quotes_before_colons_do_not_cost_a_second_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Text holding JSON or code (`say \\"a\\": 1`) needs no second, slower parse."""
    calls: list[bytes] = []
    original = jsonl.duplicate_key

    def counting(line: bytes) -> str:
        calls.append(line)
        return original(line)

    monkeypatch.setattr(jsonl, "duplicate_key", counting)
    text = 'config {"model": "x", "steps": 3, "lr": 1e-5, "a\\": ["b:"]}' * 3
    row = {"input_text": text, "candidate_0": 'a \\": b', "candidate_1": "c", "choice": 0}
    for line in (json.dumps(row), json.dumps(row, separators=(",", ":"))):
        assert jsonl.check_raw_row(line.encode(), row) == ("", "")
    assert calls == []


@pytest.mark.parametrize(
    "line",
    [  # keys that end in backslashes or quotes, doubled: never missed
        b'{"a\\\\": 1, "a\\\\": 2}',
        b'{"a\\\\\\\\": 1, "a\\\\\\\\":2}',
        b'{"a\\"": 1, "a\\"": 2}',
        b'{"x": "\\": \\": \\":", "a\\\\": 1, "a\\\\" : 2}',
        b'{"x": "\\\\\\": \\\\\\":", "k": 1, "k": 2}',
        b'{"x": "\\"\\t:", "k": 1, "k"\t:2}',
    ],
)
def test_duplicate_keys_next_to_backslashes_are_still_found(line: bytes) -> None:

    row = json.loads(line)
    assert jsonl.check_raw_row(line, row)[1].startswith("appears twice in one object"), line


def test_key_end_counting_never_misses_a_duplicate_fuzzed() -> None:
    """Random objects whose keys and texts mix backslashes, quotes, colons and JSON
    whitespace, half with a repeated key: the cheap count never hides a duplicate
    (planting a wrong backslash rule fails this within a few thousand lines)."""

    rng = random.Random(12)
    alphabet = ["a", "b", "\\", '"', ":", " ", "é", "\t", "{", ","]
    spaces = ["", " ", "\t", "\r", "  "]

    def text() -> str:
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 6)))

    def value(depth: int) -> str:
        if depth < 2 and rng.random() < 0.2:
            return obj(depth + 1)
        return json.dumps(text(), ensure_ascii=rng.random() < 0.5)

    def obj(depth: int = 0) -> str:
        keys = [text() for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.5:
            keys.append(rng.choice(keys))
        members = [
            json.dumps(key, ensure_ascii=rng.random() < 0.5)
            + rng.choice(spaces)
            + ":"
            + rng.choice(spaces)
            + value(depth)
            for key in keys
        ]
        return "{" + ("," + rng.choice(spaces)).join(members) + "}"

    for _ in range(30000):
        line = obj().encode()
        expected = jsonl.duplicate_key(line)
        assert bool(jsonl.check_raw_row(line, json.loads(line))[0]) == bool(expected), line
