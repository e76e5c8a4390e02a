"""tools/analysis_tools/bagformer_speed.py (the speed protocol, on the CPU-sized config) and the
aggregation of tools/experiments/bagformer/bagformer_compare.py."""

import json

import pytest
from conftest import REPO_ROOT, load_tool

bagformer_compare = load_tool("bagformer_compare")
bagformer_speed = load_tool("bagformer_speed")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from retrieval_ext.datasets.image_text_synthetic import write_image_text_dataset

    root = tmp_path_factory.mktemp("image_text")
    write_image_text_dataset(root, {"train": 2, "val": 2, "test": 4}, seed=4)
    return root


def test_speed_protocol_measures_and_marks_extrapolation(data, tmp_path, capsys):
    out = tmp_path / "speed"
    bagformer_speed.main(
        [
            "--cfg-path",
            str(REPO_ROOT / "configs" / "lavis" / "bagformer" / "embedded.yaml"),
            "--gallery",
            "8",
            "40",
            "--max-measured-pairs",
            "16",
            "--pair-batch",
            "8",
            "--query-batch",
            "4",
            "--repeats",
            "1",
            "--captions",
            str(data / "annotations" / "test.json"),
            "--dictionary",
            str(data / "entities.txt"),
            "--out",
            str(out),
        ]
    )
    result = json.loads((out / "results.json").read_text())
    small, large = result["rows"]
    assert (small["N"], large["N"]) == (8, 40)
    assert small["single_latency"] == "measured" and large["single_latency"] == "extrapolated"
    assert small["single_qps_note"] == "extrapolated"  # 4 queries x 8 images > 16 pairs
    for row in result["rows"]:
        assert row["dual_latency_ms"] > 0 and row["single_latency_ms"] > 0
        ratio = row["single_latency_ms"] / row["dual_latency_ms"]
        assert row["latency_ratio"] == pytest.approx(ratio)
    assert result["image_tokens"] == 37  # 48 px / 8 px patches = 36, and [CLS]
    assert result["torch_threads"] == 1 and len(result["load_average_before_after"]) == 2
    assert result["bagging"]["captions"] == 12 and result["bagging"]["uncached_us_per_caption"] > 0
    assert "extrapolated" in (out / "report.md").read_text()


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
