"""A profile of a dataset worth reading before paying for a run, built while streaming.

Memory is fixed whatever the size of the data: duplicates and eval overlap are found
with Bloom filters (rbloom's, 12 MiB each; about 0.003% false duplicates at 3.5 million
rows, 1% at 10 million: the counts are estimates), lengths go into fixed histograms, and no row
is kept.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from typing import Any

# Honest estimate: the model tokenizers are not available offline.
CHARS_PER_TOKEN = 4.0
_KEY_MASK = (1 << 64) - 1


class SeenFilter:
    """A Bloom filter over 64-bit keys (rbloom's, in compiled code): fixed memory, no
    false negatives. The default takes 12 MiB: about 0.003% false positives at 3.5 million
    keys, 1% at 10 million."""

    def __init__(self, expected: int = 10_000_000, false_rate: float = 0.01) -> None:
        from rbloom import Bloom

        self.bloom = Bloom(expected, false_rate)

    @property
    def size_in_bytes(self) -> int:
        return int(self.bloom.size_in_bits) // 8

    def add(self, key: int) -> bool:
        """Adds a key; returns whether it was (probably) there already."""
        if key in self.bloom:
            return True
        self.bloom.add(key)
        return False

    def __contains__(self, key: int) -> bool:
        return key in self.bloom


# Histogram bins: 0, 1, 2-3, 4-7, ... (powers of two), in characters. 64 bins hold any
# length a Python string can have, so no long text is folded into a smaller last bin.
_BINS = 64


def prompt_text(row: dict[str, Any]) -> str:
    """The prompt of a row: ``input_text``, or the chat messages' contents joined."""
    text = row.get("input_text")
    if isinstance(text, str):
        return text
    messages = row.get("messages")
    if isinstance(messages, list):
        return "\n".join(str(m.get("content", "")) for m in messages if isinstance(m, dict))
    return ""


@dataclass
class LengthHistogram:
    """Lengths in characters, in power-of-two bins, with the exact count, sum and max."""

    bins: list[int] = field(default_factory=lambda: [0] * _BINS)
    count: int = 0
    total: int = 0
    longest: int = 0
    over: dict[int, int] = field(default_factory=dict)  # token limit -> rows over it

    def add(self, length: int, limits: tuple[int, ...]) -> None:
        self.bins[min(length.bit_length(), _BINS - 1)] += 1
        self.count += 1
        self.total += length
        self.longest = max(self.longest, length)
        tokens = math.ceil(length / CHARS_PER_TOKEN)
        for limit in limits:
            if tokens > limit:
                self.over[limit] = self.over.get(limit, 0) + 1

    def merge(self, other: LengthHistogram) -> None:
        """Adds another histogram's lengths."""
        self.bins = [a + b for a, b in zip(self.bins, other.bins, strict=True)]
        self.count += other.count
        self.total += other.total
        self.longest = max(self.longest, other.longest)
        for limit, rows in other.over.items():
            self.over[limit] = self.over.get(limit, 0) + rows

    def percentile(self, share: float) -> int:
        """An upper bound of the ``share`` percentile (the bin's upper edge)."""
        wanted, seen = share * self.count, 0
        for index, rows in enumerate(self.bins):
            seen += rows
            if rows and seen >= wanted:
                return min((1 << index) - 1 if index else 0, self.longest)
        return self.longest

    def summary(self) -> dict[str, Any]:
        return {
            "rows": self.count,
            "mean_chars": round(self.total / self.count, 1) if self.count else 0,
            "p50_chars_at_most": self.percentile(0.5),
            "p90_chars_at_most": self.percentile(0.9),
            "p99_chars_at_most": self.percentile(0.99),
            "max_chars": self.longest,
        }


@dataclass
class Profile:
    """Counts for one dataset.

    Attributes:
        training: filters of the training prompts; an eval profile counts its prompts
            found there (``eval_overlap``).
    """

    prompt_limit: int = 512
    target_limit: int = 64
    training: tuple[SeenFilter, ...] = ()
    rows: int = 0
    eval_overlap: int = 0
    has_pairs: bool = False
    prompts: SeenFilter = field(default_factory=SeenFilter)
    pairs: SeenFilter = field(default_factory=SeenFilter)
    duplicate_prompts: int = 0
    duplicate_pairs: int = 0
    choices: dict[str, int] = field(default_factory=dict)
    empty_texts: int = 0
    identical_candidates: int = 0
    prompt_lengths: LengthHistogram = field(default_factory=LengthHistogram)
    candidate_lengths: LengthHistogram = field(default_factory=LengthHistogram)

    # Set by ``child``: keys are recorded in order (for ``absorb``) instead of filtered.
    prompt_keys: array[int] | None = None
    pair_keys: array[int] | None = None

    def observe(self, row: dict[str, Any]) -> None:
        """Adds one parsed row (valid or not: missing fields are simply not counted)."""
        self.rows += 1
        prompt = row.get("input_text")
        if type(prompt) is not str:
            prompt = prompt_text(row)
        key = hash(prompt) & _KEY_MASK
        if self.prompt_keys is not None:
            self.prompt_keys.append(key)
        elif key in self.prompts.bloom:
            self.duplicate_prompts += 1
        else:
            self.prompts.bloom.add(key)
        if self.training and any(key in seen.bloom for seen in self.training):
            self.eval_overlap += 1
        length = len(prompt)
        if not length or prompt.isspace():
            self.empty_texts += 1
        _add_length(self.prompt_lengths, length, self.prompt_limit)
        if "candidate_0" not in row and "candidate_1" not in row:
            return
        first, second = row.get("candidate_0", ""), row.get("candidate_1", "")
        if type(first) is not str:
            first = str(first)
        if type(second) is not str:
            second = str(second)
        self.has_pairs = True
        key = hash((prompt, first, second)) & _KEY_MASK
        if self.pair_keys is not None:
            self.pair_keys.append(key)
        elif key in self.pairs.bloom:
            self.duplicate_pairs += 1
        else:
            self.pairs.bloom.add(key)
        choice = row.get("choice")
        name = _CHOICE_KEYS.get(choice) if type(choice) is int else None
        if name is None:
            name = json_key(choice)
        self.choices[name] = self.choices.get(name, 0) + 1
        if first == second or (
            # strip() changes only texts with a space at an end: skip two copies otherwise
            (
                first[:1].isspace()
                or first[-1:].isspace()
                or second[:1].isspace()
                or second[-1:].isspace()
            )
            and first.strip() == second.strip()
        ):
            self.identical_candidates += 1
        limits = self.candidate_lengths
        for text in (first, second):
            length = len(text)
            if not length or text.isspace():
                self.empty_texts += 1
            _add_length(limits, length, self.target_limit)

    __call__ = observe  # a profile is the per-row callback itself

    def child(self) -> Profile:
        """An empty profile for one byte range of a file read in parallel: it records
        its keys in order rather than filtering them, for ``absorb``."""
        return Profile(
            self.prompt_limit,
            self.target_limit,
            self.training,
            prompts=_NO_FILTER,
            pairs=_NO_FILTER,
            prompt_keys=array("Q"),
            pair_keys=array("Q"),
        )

    def snapshot(self) -> dict[str, Any]:
        """What ``absorb`` needs, as picklable data."""
        state = {name: getattr(self, name) for name in _COUNTERS}
        state["lengths"] = (self.prompt_lengths, self.candidate_lengths)
        state["keys"] = (self.prompt_keys, self.pair_keys)
        return state

    def absorb(self, state: dict[str, Any]) -> None:
        """Adds a child's rows, as if they had been observed here (call in row order)."""
        for name in _COUNTERS:
            if name == "choices":
                for choice, count in state[name].items():
                    self.choices[choice] = self.choices.get(choice, 0) + count
            elif name == "has_pairs":
                self.has_pairs = self.has_pairs or state[name]
            else:
                setattr(self, name, getattr(self, name) + state[name])
        self.prompt_lengths.merge(state["lengths"][0])
        self.candidate_lengths.merge(state["lengths"][1])
        prompt_keys, pair_keys = state["keys"]
        self.duplicate_prompts += _add_keys(self.prompts.bloom, prompt_keys)
        self.duplicate_pairs += _add_keys(self.pairs.bloom, pair_keys)

    def summary(self) -> dict[str, Any]:
        """The profile as plain data (for ``--json`` and for the human report)."""
        prompts = self.prompt_lengths
        candidates = self.candidate_lengths
        result: dict[str, Any] = {
            "rows": self.rows,
            "duplicate_prompts": self.duplicate_prompts,
            "empty_texts": self.empty_texts,
            "prompt_length": prompts.summary(),
            "prompts_likely_truncated": _share(prompts.over.get(self.prompt_limit, 0), prompts),
        }
        if self.training:
            result["eval_overlap"] = self.eval_overlap
        if self.has_pairs:
            result.update(
                {
                    "duplicate_pairs": self.duplicate_pairs,
                    "choice_balance": dict(sorted(self.choices.items())),
                    "identical_candidates": self.identical_candidates,
                    "candidate_length": candidates.summary(),
                    "candidates_likely_truncated": _share(
                        candidates.over.get(self.target_limit, 0), candidates
                    ),
                }
            )
        result["truncation_estimate"] = (
            f"~{CHARS_PER_TOKEN:g} characters per token against prompt_sequence_length="
            f"{self.prompt_limit} and target_sequence_length={self.target_limit}; an estimate,"
            " the model tokenizers are not available offline"
        )
        return result


_COUNTERS = (
    "rows",
    "eval_overlap",
    "has_pairs",
    "duplicate_prompts",
    "duplicate_pairs",
    "choices",
    "empty_texts",
    "identical_candidates",
)
_CHOICE_KEYS = {0: "0", 1: "1"}
_NO_FILTER = SeenFilter(expected=1)  # a child records keys; its filters stay unused


def _add_keys(bloom: Any, keys: array[int]) -> int:
    """Adds keys to a filter in order; returns how many were (probably) there already."""
    seen = 0
    add = bloom.add
    for key in keys:
        if key in bloom:
            seen += 1
        else:
            add(key)
    return seen


def _add_length(histogram: LengthHistogram, length: int, limit: int) -> None:
    """``histogram.add(length, (limit,))``, without the loop (the hot path)."""
    histogram.bins[length.bit_length()] += 1  # a str's length is below 2**63: bin < 64
    histogram.count += 1
    histogram.total += length
    if length > histogram.longest:
        histogram.longest = length
    if length > limit * CHARS_PER_TOKEN:  # ceil(length / c) > limit  <=>  length > limit * c
        histogram.over[limit] = histogram.over.get(limit, 0) + 1


def json_key(value: Any) -> str:
    """A choice value as a dictionary key: ``0``, ``1`` or its JSON-ish text."""
    return str(value).lower() if not isinstance(value, str) else repr(value)


def _share(count: int, histogram: LengthHistogram) -> dict[str, Any]:
    share = count / histogram.count if histogram.count else 0.0
    return {"rows": count, "share": round(share, 4)}
