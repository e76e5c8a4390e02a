"""The STH tools: the motion benchmark's seed summary, and both tools end to end on tiny
settings (slow)."""

import json

import pytest
from conftest import load_tool


def test_motion_summary_reports_mean_and_spread_over_seeds():
    summarise = load_tool("sth_motion_benchmark").summarise

    def run(top1s):
        return {
            "rows": [
                {
                    "model": name,
                    "top1": top1,
                    "mean_class_acc": top1,
                    "train_seconds": 10.0,
                    "GFLOPs": 0.3,
                    "params_M": 11.0,
                }
                for name, top1 in zip(("TSN", "STH"), top1s, strict=True)
            ]
        }

    rows = summarise([run((0.4, 0.7)), run((0.5, 0.8)), run((0.6, 0.9))])
    assert [r["model"] for r in rows] == ["TSN", "STH"]
    assert rows[1]["top1 mean"] == pytest.approx(0.8)
    assert rows[1]["top1 std"] == pytest.approx(0.1)
    assert rows[0]["top1 per seed"] == "0.400 0.500 0.600" and rows[0]["seeds"] == 3


@pytest.mark.slow
def test_motion_benchmark_tool_runs_the_hard_level_over_seeds(tmp_path):
    sth_motion_benchmark = load_tool("sth_motion_benchmark")

    out = tmp_path / "motion"
    sth_motion_benchmark.main(
        ["--level", "hard", "--seeds", "0", "1", "--epochs", "1", "--train", "1"]
        + ["--val", "1", "--test", "1", "--out", str(out)]
    )
    result = json.loads((out / "motion_benchmark.json").read_text())
    assert len(result["runs"]) == 2 and result["settings"]["level"] == "hard"
    assert [r["seeds"] for r in result["summary"]] == [2, 2, 2]
    assert result["runs"][1]["dataset"]["seed"] == 1
    assert len(result["runs"][0]["dataset"]["classes"]) == 14
    assert (out / "accuracy_vs_flops.png").is_file()
    # runs made separately (one process per seed) merge into the same summary
    sth_motion_benchmark.main(["--merge", str(out), str(out), "--out", str(tmp_path / "merged")])
    merged = json.loads((tmp_path / "merged" / "motion_benchmark.json").read_text())
    assert [r["seeds"] for r in merged["summary"]] == [4, 4, 4]
    assert merged["settings"]["level"] == "hard"


@pytest.mark.slow
def test_efficiency_tool_prints_layer_network_and_boundary_tables(tmp_path):
    sth_efficiency = load_tool("sth_efficiency")

    out = tmp_path / "eff"
    sth_efficiency.main(
        ["--size", "32", "--batches", "1", "--threads", "1", "--repeats", "1"]
        + ["--train-repeats", "1", "--layer-repeats", "1", "--out", str(out)]
    )
    result = json.loads((out / "sth_efficiency.json").read_text())
    assert [r["shape"] for r in result["layers"]] == [
        "64ch 56x56",
        "128ch 28x28",
        "256ch 14x14",
        "512ch 7x7",
    ]
    assert [r["STH arrangement"] for r in result["layers"]] == [
        "masked",
        "grouped",
        "grouped",
        "grouped",
    ]
    assert all(r["STH masked CL cpu ms"] > 0 for r in result["layers"])
    sth = next(r for r in result["networks"] if r["model"] == "STH-R50 r=1/4")
    assert sth["vs TSM b1 t1"] > 0 and sth["train step ms t1"] > 0
    assert sth["cpu vs TSM b1 t1"] > 0 and sth["cpu train vs TSM t1"] > 0
    assert result["boundary"][0]["boundary share"] >= 0
    assert "end" in result["settings"]["load_average"]
