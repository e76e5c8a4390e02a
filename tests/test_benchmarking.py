"""plugins.benchmarking: the timer shared by the benchmarks, thread pinning, the seed
summary, the machine stamp and the output writer."""

import json
import re
import sys
import time
import types

import pytest

from plugins import benchmarking


def test_time_calls_warms_up_then_interleaves_the_rounds():
    order = []
    calls = {name: (lambda n=name: order.append(n)) for name in ("a", "b")}
    timings = benchmarking.time_calls(calls, 3)
    assert order == ["a", "b"] + ["a", "b"] * 3  # one warm-up each, then rounds
    assert set(timings) == {"a", "b"}
    for timing in timings.values():
        assert len(timing.seconds) == len(timing.cpu_seconds) == 3
        assert all(s >= 0 for s in timing.seconds + timing.cpu_seconds)
    order.clear()
    benchmarking.time_calls(calls, 2, warmup=False)
    assert order == ["a", "b", "a", "b"]


def test_timing_medians_and_cpu_time_of_a_sleeping_call():
    timing = benchmarking.Timing([3.0, 1.0, 2.0], [0.5, 0.1, 0.2])
    assert timing.median == 2.0 and timing.cpu_median == 0.2
    sleep = benchmarking.time_calls({"sleep": lambda: time.sleep(0.02)}, 1)["sleep"]
    assert sleep.median >= 0.02
    assert sleep.cpu_median < 0.01  # a sleeping thread spends no CPU time


def test_median_seconds_counts_its_calls():
    calls = []
    seconds = benchmarking.median_seconds(lambda: calls.append(1), 5)
    assert len(calls) == 6 and seconds >= 0  # warm-up + 5
    calls.clear()
    benchmarking.median_seconds(lambda: calls.append(1), 3, warmup=False)
    assert len(calls) == 3


def test_median_seconds_within_a_budget(monkeypatch):
    """On a simulated clock: each call takes ``cost`` seconds (exact binary fractions)."""
    clock = [0.0]
    monkeypatch.setattr(benchmarking, "time", types.SimpleNamespace(perf_counter=lambda: clock[0]))

    def measured(cost):
        calls = []

        def call():
            calls.append(cost)
            clock[0] += cost

        return benchmarking.median_seconds_within(call, 1.0, at_most=10), len(calls)

    # a first call over the budget is the measurement itself
    assert measured(2.0) == (2.0, 1)
    # a warm-up, then calls while under the budget, at least 3 of them ...
    assert measured(0.5) == (0.5, 1 + 3)
    # ... and at most at_most
    assert measured(0.0625) == (0.0625, 1 + 10)


def test_mean_and_sample_standard_deviation_over_seeds():
    mean, std = benchmarking.mean_std([0.6, 0.7, 0.8])
    assert mean == pytest.approx(0.7) and std == pytest.approx(0.1)
    assert benchmarking.mean_std([5.0]) == (5.0, 0.0)
    assert benchmarking.mean_std_text([50.0, 52.0, 54.0]) == "52.0 ± 2.0"
    assert benchmarking.mean_std_text([50.0, 52.0], digits=2) == "51.00 ± 1.41"
    assert benchmarking.mean_std_text([7.25]) == "7.2"  # one run: no spread


def test_set_threads_pins_torch_and_a_loaded_faiss(monkeypatch):
    import torch

    pinned = []
    fake = types.SimpleNamespace(omp_set_num_threads=pinned.append)
    before = torch.get_num_threads()
    try:
        monkeypatch.delitem(sys.modules, "faiss", raising=False)
        benchmarking.set_threads(1)  # FAISS not loaded: only torch
        assert torch.get_num_threads() == 1 and pinned == []
        monkeypatch.setitem(sys.modules, "faiss", fake)
        benchmarking.set_threads(2)
        assert torch.get_num_threads() == 2 and pinned == [2]
    finally:
        torch.set_num_threads(before)


def test_machine_stamp_names_the_machine_and_the_commit(tmp_path):
    import torch

    stamp = benchmarking.machine_stamp()
    assert set(stamp) == {
        "platform",
        "python",
        "cpus",
        "torch",
        "torch_threads",
        "load_average",
        "commit",
    }
    assert stamp["torch"] == torch.__version__ and stamp["torch_threads"] >= 1
    assert len(stamp["load_average"]) == 3 and stamp["cpus"] >= 1
    json.dumps(stamp)  # recordable as it is
    if (benchmarking.REPO_ROOT / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{40}\+?", stamp["commit"])
    assert benchmarking.git_commit(tmp_path) is None  # not a checkout


def test_write_results_writes_json_and_markdown(tmp_path):
    out = tmp_path / "new" / "run"
    benchmarking.write_results(out, {"rows": [1, 2]}, "| a |\n")
    assert json.loads((out / "results.json").read_text()) == {"rows": [1, 2]}
    assert (out / "results.json").read_text() == json.dumps({"rows": [1, 2]}, indent=1)
    assert (out / "report.md").read_text() == "| a |\n"
    benchmarking.write_results(
        out, {"p": tmp_path}, json_name="r.json", indent=2, default=str, markdown=None
    )
    assert json.loads((out / "r.json").read_text()) == {"p": str(tmp_path)}
    benchmarking.write_results(out, markdown="table", markdown_name="table.md")
    assert (out / "table.md").read_text() == "table"
    assert sorted(p.name for p in out.iterdir()) == [
        "r.json",
        "report.md",
        "results.json",
        "table.md",
    ]
