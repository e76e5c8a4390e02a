"""The aggregation of tools/experiments/bagformer/bagformer_compare.py (the speed tool is
tested in test_bagformer_speed.py)."""

import pytest
from conftest import load_tool

bagformer_compare = load_tool("bagformer_compare")


def test_compare_summarises_seeds_and_flags_differences_beyond_the_spread():
    runs = {
        ("bagwise", "recall"): [
            {m: 50.0 + s for m in bagformer_compare.METRICS} for s in (0, 2, 4)
        ],
        ("cls_token", "recall"): [
            {m: 40.0 + s for m in bagformer_compare.METRICS} for s in (0, 1, 2)
        ],
        ("tokenwise", "recall"): [{m: 51.0 for m in bagformer_compare.METRICS}] * 3,
    }
    rows = bagformer_compare.summarise(runs)
    bag = rows[0]
    assert bag["r_mean"] == pytest.approx(52.0) and bag["r_mean_sd"] == pytest.approx(2.0)
    diffs = {d["row"]: d for d in bagformer_compare.differences(rows, "bagwise/recall")}
    assert diffs["cls_token/recall"]["r_mean - bagwise/recall"] == pytest.approx(-11.0)
    assert diffs["cls_token/recall"]["exceeds spread"] is True  # 11 > 2 + 1
    assert diffs["tokenwise/recall"]["exceeds spread"] is False  # 1 < 2 + 0
