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


def good_row(rng: random.Random, index: int, layout: str = "text") -> dict[str, Any]:
    pair = {"candidate_0": rng.choice(TEXTS), "candidate_1": rng.choice(TEXTS), "choice": index % 2}
    if layout == "text":
        return {"input_text": f"{rng.choice(TEXTS)} #{index}", **pair}
    turns = [{"author": "user", "content": f"{rng.choice(TEXTS)} #{index}"}]
    for _ in range(rng.choice([0, 1, 2])):
        turns += [
            {"author": "assistant", "content": rng.choice(TEXTS)},
            {"author": "user", "content": rng.choice(TEXTS)},
        ]
    row: dict[str, Any] = {"messages": turns}
    if layout == "chat+context":
        row["context"] = rng.choice(TEXTS)
    return {**row, **pair}


LAYOUTS = ["text", "chat", "chat+context"]


def _turns(change: Callable[[list[dict[str, Any]]], Any]) -> Callable[[dict[str, Any]], str]:
    """A line whose chat messages are changed (text rows get a messages list first)."""

    def make(row: dict[str, Any]) -> str:
        turns = [dict(turn) for turn in row.get("messages", [{"author": "user", "content": "q"}])]
        new = {k: v for k, v in row.items() if k != "input_text"}
        new["messages"] = change(turns)
        return dumps(new)

    return make


def _set(index: int, key: str, value: Any) -> Callable[[list[dict[str, Any]]], Any]:
    def change(turns: list[dict[str, Any]]) -> Any:
        turns[index][key] = value
        return turns

    return change


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
    lambda row: dumps({"input_text": row.get("input_text", "q")}),
    lambda row: dumps({"messages": [{"author": "user", "content": "hi: there"}]}),
    lambda row: dumps(
        {
            "messages": [{"author": "user", "content": "hi"}],
            "candidate_0": "a",
            "candidate_1": "b",
            "choice": 1,
        }
    ),
    lambda row: dumps({"prompt": row.get("input_text", "q"), "chosen": "a", "rejected": "b"}),
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
    lambda row: dumps({"input_text": row.get("input_text", "q"), "extra": [[[[1]]]]}),
    _turns(lambda turns: turns),
    _turns(lambda turns: []),
    _turns(lambda turns: "hi"),
    _turns(lambda turns: [*turns, {"author": "assistant", "content": "a"}]),
    _turns(lambda turns: [{"author": "assistant", "content": "a"}, *turns]),
    _turns(lambda turns: [*turns, "text"]),
    _turns(_set(0, "author", "system")),
    _turns(lambda turns: [turns[0], {"author": "system", "content": "s"}, turns[-1]]),
    _turns(lambda turns: [turns[0], {"author": "assistant", "content": "a", "x": 1}, turns[-1]]),
    _turns(lambda turns: [{**turns[0], "x": [[[]]] * 2}]),
    _turns(lambda turns: [{**turns[0], "x": "[" * 70 + "]" * 70}]),
    lambda row: _turns(lambda turns: turns)(row).replace(
        '"content": ', '"x": ' + "[" * 70 + "]" * 70 + ', "content": ', 1
    ),
    _turns(_set(0, "author", ["user"])),
    _turns(_set(-1, "content", "  ")),
    _turns(_set(-1, "content", "")),
    _turns(_set(0, "content", 3)),
    _turns(_set(0, "content", None)),
    _turns(_set(0, "extra", 1)),
    _turns(lambda turns: [{"author": "user"}]),
    _turns(lambda turns: [{"content": "x", "role": "user"}]),
    _turns(lambda turns: [{"author": "user", "content": {"text": "x"}}]),
    lambda row: _turns(lambda turns: turns)(row)[:-1] + ', "context": null}',
    lambda row: _turns(lambda turns: turns)(row)[:-1] + ', "context": 5}',
    lambda row: _turns(lambda turns: turns)(row)[:-1] + ', "context": "c: d"}',
    lambda row: _turns(lambda turns: turns)(row).replace(
        '"author": "user"', '"author": "user", "author": "user"', 1
    ),
    lambda row: _turns(lambda turns: turns)(row).replace(
        '"content":', '"content": "x", "content":', 1
    ),
    lambda row: _turns(lambda turns: turns)(row).replace(
        '"content":', '"\\u0063ontent": "x", "content":', 1
    ),
]


def dataset(seed: int, rate: float, lines: int, layout: str = "text") -> list[bytes]:
    rng = random.Random(seed)
    out = []
    for index in range(lines):
        row = good_row(rng, index, layout)
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


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", rules.KINDS)
@pytest.mark.parametrize("rate", [0.0, 0.0005, 0.01, 0.2, 0.9])
def test_fast_path_and_row_by_row_give_the_same_report(
    layout: str, kind: str, rate: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    for seed in range(2):
        lines = dataset(seed, rate, 2500 + seed * 700, layout)  # several blocks, uneven ends
        fast = check(lines, kind)
        slow = reference(monkeypatch, lines, kind)
        assert fast[0] == slow[0], (seed, fast[0]["problems"][:3], slow[0]["problems"][:3])
        assert fast[1] == slow[1]


@pytest.mark.parametrize("odd", range(len(ODD_LINES)))
def test_each_odd_line_alone_in_a_block_of_good_rows(
    odd: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = random.Random(odd)
    for layout in LAYOUTS:
        lines = [dumps(good_row(rng, i, layout)).encode() + b"\n" for i in range(300)]
        odd_row = good_row(rng, 150, layout)
        lines[150] = ODD_LINES[odd](odd_row).encode("utf-8", "surrogatepass") + b"\n"
        for kind in rules.KINDS:
            assert check(lines, kind) == reference(monkeypatch, lines, kind), (layout, kind)


def test_the_fast_path_settles_good_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without this the tests above could pass with a fast path that never runs."""
    settled: list[str] = []
    original = rules.block_layout

    def counting(lines: list[bytes], rows: list[Any], kind: str) -> str:
        settled.append(original(lines, rows, kind))
        return settled[-1]

    monkeypatch.setattr(rules, "block_layout", counting)
    for layout, expected in [("text", "text"), ("chat", "chat"), ("chat+context", "chat")]:
        settled.clear()
        lines = dataset(1, 0.0, 5000, layout)
        report, seen = check(lines, "preference")
        assert report["errors"] == 0 and report["rows"] == 5000 and len(seen) == 5000
        assert len(settled) >= 4 and set(settled) == {expected}, layout


@pytest.mark.parametrize("odd", range(len(ODD_LINES)))
def test_blocks_made_only_of_one_odd_line(odd: int, monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(odd)
    make = ODD_LINES[odd]
    for layout in LAYOUTS:
        lines = [
            make(good_row(rng, i, layout)).encode("utf-8", "surrogatepass") + b"\n"
            for i in range(300)
        ]
        for kind in rules.KINDS:
            assert check(lines, kind) == reference(monkeypatch, lines, kind), (layout, kind)
