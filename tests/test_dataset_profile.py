"""The profile's length histogram: percentiles hold for texts of any length."""

from __future__ import annotations

import pytest

from vertex_rlhf.data.profile import LengthHistogram


@pytest.mark.parametrize("length", [2**23, 20_000_000, 3 * 2**30])
def test_percentiles_are_upper_bounds_for_very_long_texts(length: int) -> None:
    histogram = LengthHistogram()
    for _ in range(9):
        histogram.add(10, ())
    for _ in range(91):
        histogram.add(length, ())
    summary = histogram.summary()
    assert summary["max_chars"] == length
    assert summary["p50_chars_at_most"] >= length
    assert summary["p90_chars_at_most"] >= length
    assert summary["p99_chars_at_most"] == length  # capped by the longest seen


def test_percentiles_of_short_texts_keep_their_bins() -> None:
    histogram = LengthHistogram()
    for length in (1, 2, 3, 100, 1000):
        histogram.add(length, ())
    assert histogram.percentile(0.5) == 3
    assert histogram.percentile(0.99) == 1000
