"""The block fast path (``rules.block_layout``) never changes a verdict.

Datasets of good rows with every kind of bad, odd or borderline row mixed in at several
rates are checked twice, with the fast path and with it switched off (every block then
goes row by row, the reference): reports, problems word for word and the rows a profile
observes must be the same. Runs under orjson and under the standard-library parser.
"""

from __future__ import annotations

import json
import random
from typing import Any, Callable

import pytest

from vertex_rlhf.data import rules

pytestmark = pytest.mark.usefixtures("json_parser")

TEXTS = ["a post", "Human: hi\nAssistant: hello", "café: 東京 🙂", 'say \\"x\\": y', "x" * 300]


def good_row(rng: random.Random, index: int) -> dict[str, Any]:
    return {
        "input_text": f"{rng.choice(TEXTS)} #{index}",
        "candidate_0": rng.choice(TEXTS),
        "candidate_1": rng.choice(TEXTS),
        "choice": index % 2,
    }


def dumps(row: Any, compact: bool = False) -> str:
    if compact:
        return json.dumps(row, ensure_ascii=False, separators=(",", ":"))
    return json.dumps(row, ensure_ascii=False)


def _replace(field: str, value: Any) -> Callable[[dict[str, Any]], str]:
    return lambda row: dumps({**row, field: value})


def _drop(field: str) -> Callable[[dict[str, Any]], str]:
    return lambda row: dumps({k: v for k, v in row.items() if k != field})


def _duplicate(spelling: str) -> Callable[[dict[str, Any]], str]:
    return lambda row: dumps(row)[:-1] + f", {spelling} 1}}"


# Each turns a good row into a line the fast path must not wave through unless the
# row-by-row check would also pass it (some of these are valid: they must agree too).
ODD_LINES: list[Callable[[dict[str, Any]], str]] = [
    lambda row: dumps(row, compact=True),
    lambda row: dumps(row) + "\r",
    lambda row: "  " + dumps(row) + "  ",
    lambda row: "",
    lambda row: "   \t",
    _replace("choice", True),
    _replace("choice", 1.0),
    _replace("choice", 2),
    _replace("choice", "1"),
    _replace("choice", None),
    _replace("choice", -0),
    _drop("choice"),
    _drop("candidate_1"),
    _drop("input_text"),
    _replace("candidate_0", ""),
    _replace("candidate_0", " \t "),
    _replace("candidate_1", "\u3000"),  # ideographic space: whitespace
    _replace("candidate_1", "\u200b"),  # zero-width space: not whitespace, valid
    _replace("candidate_0", 5),
    _replace("candidate_0", None),
    _replace("candidate_0", ["a"]),
    _replace("input_text", {"text": "a"}),
    _replace("input_text", "   "),
    _replace("id", 7),
    _replace("meta", {"a": {"b": [1, 2, {"c": 3}]}}),
    _replace("messages", [{"author": "user", "content": "hi"}]),
    lambda row: dumps({"input_text": row["input_text"]}),
    lambda row: dumps({"messages": [{"author": "user", "content": "hi: there"}]}),
    lambda row: dumps(
        {
            "messages": [{"author": "user", "content": "hi"}],
            "candidate_0": "a",
            "candidate_1": "b",
            "choice": 1,
        }
    ),
    lambda row: dumps({"prompt": row["input_text"], "chosen": "a", "rejected": "b"}),
    _duplicate('"choice":'),
    _duplicate('"choice" :'),
    _duplicate('"choice"\t:'),
    _duplicate('"\\u0063hoice":'),
    _duplicate('"input_text":'),
    lambda row: dumps({**row, "candidate_0": "a: b: c: d: e"})[:-1] + ', "choice": 0}',
    lambda row: dumps({**row, "candidate_0": 'quote \\": colon'}),
    lambda row: dumps(row)[:-1] + ', "x": NaN}',
    lambda row: dumps(row)[:-1] + ', "x": 1e400}',
    lambda row: dumps(row)[:-1] + ', "x": "\\ud800"}',
    lambda row: dumps(row)[:-1],
    lambda row: "\ufeff" + dumps(row),
    lambda row: "[" * 70 + "]" * 70,
    lambda row: dumps([row]),
    lambda row: '"just text"',
    lambda row: "7",
    lambda row: dumps({"input_text": row["input_text"], "extra": [[[[1]]]]}),
]


def dataset(seed: int, rate: float, lines: int) -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for index in range(lines):
        row = good_row(rng, index)
        text = rng.choice(ODD_LINES)(row) if rng.random() < rate else dumps(row)
        out.append(text.encode("utf-8", "surrogatepass") + b"\n")
    return out


def check(lines: list[bytes], kind: str) -> tuple[dict[str, Any], list[Any]]:
    seen: list[Any] = []
    report = rules.new_dataset_report("d.jsonl", kind, max_reported=10**6)
    rules.check_lines(report, "d.jsonl", lines, seen.append)
    return report, seen


def reference(
    monkeypatch: pytest.MonkeyPatch, lines: list[bytes], kind: str
) -> tuple[dict[str, Any], list[Any]]:
    with monkeypatch.context() as patch:
        patch.setattr(rules, "block_layout", lambda lines, rows, kind: "")
        return check(lines, kind)


@pytest.mark.parametrize("kind", rules.KINDS)
@pytest.mark.parametrize("rate", [0.0, 0.0005, 0.01, 0.2, 0.9])
def test_fast_path_and_row_by_row_give_the_same_report(
    kind: str, rate: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    for seed in range(3):
        lines = dataset(seed, rate, 2500 + seed * 700)  # several blocks, uneven ends
        fast = check(lines, kind)
        slow = reference(monkeypatch, lines, kind)
        assert fast[0] == slow[0], (seed, fast[0]["problems"][:3], slow[0]["problems"][:3])
        assert fast[1] == slow[1]


@pytest.mark.parametrize("odd", range(len(ODD_LINES)))
def test_each_odd_line_alone_in_a_block_of_good_rows(
    odd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(odd)
    lines = [dumps(good_row(rng, i)).encode() + b"\n" for i in range(300)]
    lines[150] = ODD_LINES[odd](good_row(rng, 150)).encode("utf-8", "surrogatepass") + b"\n"
    for kind in rules.KINDS:
        assert check(lines, kind) == reference(monkeypatch, lines, kind), kind


def test_the_fast_path_settles_good_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without this the tests above could pass with a fast path that never runs."""
    settled: list[str] = []
    original = rules.block_layout

    def counting(lines: list[bytes], rows: list[Any], kind: str) -> str:
        settled.append(original(lines, rows, kind))
        return settled[-1]

    monkeypatch.setattr(rules, "block_layout", counting)
    lines = dataset(1, 0.0, 5000)
    report, seen = check(lines, "preference")
    assert report["errors"] == 0 and report["rows"] == 5000 and len(seen) == 5000
    assert len(settled) >= 4 and all(layout == "text" for layout in settled)


@pytest.mark.parametrize("odd", range(len(ODD_LINES)))
def test_blocks_made_only_of_one_odd_line(odd: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(odd)
    make = ODD_LINES[odd]
    lines = [make(good_row(rng, i)).encode("utf-8", "surrogatepass") + b"\n" for i in range(300)]
    for kind in rules.KINDS:
        assert check(lines, kind) == reference(monkeypatch, lines, kind), kind
