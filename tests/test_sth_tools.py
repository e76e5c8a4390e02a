"""The STH tools: the motion benchmark's seed summary and its run on tiny settings (slow);
the efficiency tool's quick run and its compiler-failure rows."""

import json

import pytest
import torch
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


def test_efficiency_tool_quick_run_has_every_table_and_exact_treatments(tmp_path, capsys):
    sth_efficiency = load_tool("sth_efficiency")

    out = tmp_path / "eff"
    argv = ["--quick", "--out", str(out)]
    sth_efficiency.main(argv)
    printed = capsys.readouterr().out
    for title in ("network table 'shipped'", "network table 'equal'", "network table 'jit'"):
        assert title in printed
    assert "interleaved repeats, about" in printed  # an estimate before each group
    result = json.loads((out / "sth_efficiency.json").read_text())
    assert result["settings"]["argv"] == argv and "commit" in result["settings"]["machine"]
    rows = {(r["table"], r["model"]): r for r in result["networks"]}
    assert {table for table, _ in rows} == {"shipped", "equal", "jit"}
    assert ("equal", "TSN-R18 channels-last") in rows  # --quick runs ResNet-18
    assert ("jit", "STH-R18 r=1/4, trace_path='counted'") in rows
    for (table, model), row in rows.items():
        assert row["clips/s b1 t1"] > 0 and row["train step ms t1"] > 0, (table, model)
        # folding, prepacking, the shift and tracing change nothing but float rounding
        assert row["max rel diff"] < 1e-4, (table, model)
    ratios = {(r["table"], r["model"]) for r in result["ratios"]}
    for table in ("shipped", "equal", "jit"):
        assert {(table, "STH / TSM"), (table, "STH / TSN")} <= ratios
    layer = result["layers"][0]
    assert layer["STH CL / dense CL packed"] > 0 and layer["STH CL / dense NCHW"] > 0
    docs = json.loads((out / "docs_tables.json").read_text())
    assert set(docs) == {
        "network-shipped",
        "network-equal",
        "network-jit",
        "complexity",
        "layer",
    }
    assert [row[0] for row in docs["complexity"]["rows"]] == ["TSN-R18", "TSM-R18", "STH-R18"]
    equal = docs["network-equal"]
    assert equal["command"].endswith("--quick --out " + str(out))
    assert all(len(row) == len(equal["columns"]) for row in equal["rows"])
    assert [row[0] for row in equal["rows"][-4:]] == [
        "STH / TSM",
        "STH / TSN",
        "cpu: STH / TSM",
        "cpu: STH / TSN",
    ]


def test_efficiency_tool_turns_a_compiler_failure_into_a_row(monkeypatch):
    sth_efficiency = load_tool("sth_efficiency")

    def no_compiler(model, **kwargs):
        raise RuntimeError("no C compiler")

    monkeypatch.setattr(torch, "compile", no_compiler)
    rows = sth_efficiency.network_rows(["inductor"])
    rows = [r for r in rows if r.table == "inductor"]
    assert [r.model for r in rows] == ["TSN-R50", "TSM-R50", "STH-R50 r=1/4"]
    conv = torch.nn.Conv2d(3, 4, 3)
    frames = torch.randn(8, 3, 6, 6)
    assert (
        sth_efficiency.prepared(rows[0], "inference", 1, rows[0].make_inference, conv, frames)
        is None
    )
    assert rows[0].errors == ["inference 1: RuntimeError"]
    row = {"inference path": "torch.compile", "errors": "inference 1: RuntimeError"}
    assert sth_efficiency.failed(row) == "torch.compile; failed: inference 1: RuntimeError"


def test_efficiency_tool_waits_for_a_quiet_machine_and_gives_up_loudly(monkeypatch, capsys):
    sth_efficiency = load_tool("sth_efficiency")
    loads = iter([3.0, 1.2, 0.4])
    monkeypatch.setattr(sth_efficiency.os, "getloadavg", lambda: (next(loads), 0.0, 0.0))
    slept = []
    monkeypatch.setattr(sth_efficiency.time, "sleep", slept.append)
    sth_efficiency.wait_for_quiet(0.5, max_wait=3600)
    assert len(slept) == 2 and "load 0.40: timing starts" in capsys.readouterr().out

    monkeypatch.setattr(sth_efficiency.os, "getloadavg", lambda: (5.0, 0.0, 0.0))
    with pytest.raises(SystemExit, match="still 5.00 after"):
        sth_efficiency.wait_for_quiet(0.5, max_wait=-1)
