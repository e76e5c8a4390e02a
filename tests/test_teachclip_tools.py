"""TeachCLIP's measuring tools end to end at tiny sizes: the retrieval- and training-cost
benchmark, the teacher comparison and the ablation."""

import json
import subprocess
import sys

import pytest
from conftest import REPO_ROOT


def _run(args, cwd, timeout=600):
    result = subprocess.run(
        [sys.executable, *map(str, args)], capture_output=True, text=True, timeout=timeout,
        cwd=cwd, env={"PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result


def test_cost_benchmark_prints_every_method_with_ratios(tmp_path):
    out = tmp_path / "cost"
    tool = REPO_ROOT / "tools" / "analysis_tools" / "teacher_cost_benchmark.py"
    sizes = ["--sizes", 200, "--vector-sizes", 400, "--dim", 32, "--frames", 4, "--words", 8]
    train = ["--train-steps", 1, "--train-size", "embedded", "--train-batch", 2]
    _run(
        [tool, *sizes, *train, "--block", 64, "--seconds", 0.05, "--threads", 1, "--out", out],
        tmp_path,
    )
    results = json.loads((out / "results.json").read_text())
    methods = {(row["N"], row["method"]) for row in results["rows"]}
    vectors = {
        "CLIP4Clip (dot product)", "CLIP4Clip (FAISS exact)",
        "TeachCLIP student (dot product)", "TeachCLIP student (FAISS exact)",
    }  # fmt: skip
    assert {m for n, m in methods if n == 200} == vectors | {"X-CLIP teacher", "X-Pool teacher"}
    assert {m for n, m in methods if n == 400} == vectors
    by = {(row["N"], row["method"]): row for row in results["rows"]}
    assert by[(200, "CLIP4Clip (dot product)")]["latency ratio"] == 1.0
    # read off the rows real models export: one 32-float vector each
    assert by[(200, "TeachCLIP student (FAISS exact)")]["bytes per video"] == 32 * 4
    assert by[(200, "CLIP4Clip (FAISS exact)")]["bytes per video"] == 32 * 4
    assert by[(200, "X-CLIP teacher")]["bytes per video"] == (1 + 4) * 32 * 4 + 4
    assert by[(200, "X-Pool teacher")]["bytes per video"] == 2 * 4 * 32 * 4 + 4
    assert all(row["queries/s"] > 0 for row in results["rows"])
    assert results["protocol"]["threads"] == 1
    steps = {row["setting"]: row for row in results["training"]}
    assert set(steps) == {
        "student alone",
        "+ X-CLIP teacher",
        "+ X-Pool teacher",
        "+ both teachers",
    }
    assert steps["student alone"]["vs student alone"] == 1.0
    assert all(row["seconds per step"] > 0 for row in steps.values())
    assert "| + both teachers |" in (out / "table.md").read_text()


@pytest.mark.slow
def test_teacher_comparison_trains_each_model_and_tabulates(tmp_path):
    tool = REPO_ROOT / "tools" / "experiments" / "teachclip" / "teachclip_compare_teachers.py"
    args = ["--out", tmp_path / "cmp", "--seeds", 1, 2, "--epochs", 1]
    args += ["--train", 4, "--val", 1, "--test", 2, "--models", "X-CLIP teacher", "X-Pool teacher"]
    args += ["--options", "run.batch_size_train=4"]
    _run([tool, *args], REPO_ROOT)
    results = json.loads((tmp_path / "cmp" / "results.json").read_text())
    assert [(r["model"], r["seed"]) for r in results["runs"]] == [
        ("X-CLIP teacher", 1), ("X-Pool teacher", 1), ("X-CLIP teacher", 2), ("X-Pool teacher", 2),
    ]  # fmt: skip
    assert results["runs"][0]["config"]["model"]["arch"] == "xclip_retrieval"
    table = (tmp_path / "cmp" / "table.md").read_text()
    assert "| X-Pool teacher |" in table and " ± " in table and "2 seeds (1, 2)" in table


@pytest.mark.slow
def test_ablation_trains_each_seeds_own_teachers_in_parallel_seeds(tmp_path):
    tool = REPO_ROOT / "tools" / "experiments" / "teachclip" / "teachclip_ablation.py"
    out = tmp_path / "ablation"
    args = ["--out", out, "--seeds", 1, 2, "--epochs", 1, "--pretrain-epochs", 1]
    args += ["--train", 4, "--val", 2, "--test", 3]
    args += ["--options", "run.batch_size_train=4", "run.batch_size_eval=4"]
    rows = ["CLIP4Clip meanP", "student AFA", "full, 1 teacher ({one})"]
    first = _run([tool, *args, "--jobs", 2, "--rows", *rows], REPO_ROOT)
    assert "student AFA seed 2: AFA on content %" in first.stdout
    results = json.loads((out / "results.json").read_text())
    runs = {(r["model"], r["seed"]): r for r in results["runs"]}
    assert results["dataset"]["k"] == 1 and results["dataset"]["distractors"] == "neutral"
    (frame_clip,) = out.glob("frame_clip-*.pt")  # pre-trained once, the start of every row
    assert all(r["config"]["model"]["pretrained"] == str(frame_clip) for r in results["runs"])
    for seed in (1, 2):  # each seed's students are taught by that seed's own teachers
        xclip = runs[("X-CLIP teacher", seed)]
        assert xclip["config"]["run"]["seed"] == seed
        taught = runs[("full, 1 teacher (X-CLIP)", seed)]["config"]["model"]["teachers"]
        assert taught["xpool"] is None and taught["xclip"]["checkpoint"] == xclip["checkpoint"]
        assert f"seed-{seed}" in xclip["checkpoint"]
        alone = runs[("student AFA", seed)]
        assert alone["config"]["model"]["teachers"] == {"xclip": None, "xpool": None}
        assert {"afa_content_share", "content_share_chance"} <= set(alone["metrics"])
        assert "teacher_content_share" in xclip["metrics"]
        assert (
            alone["cost"]["bytes_per_video"]
            == runs[("CLIP4Clip meanP", seed)]["cost"]["bytes_per_video"]
            < xclip["cost"]["bytes_per_video"]
        )
    # a second call keeps the finished runs and runs the missing row only
    second = _run([tool, *args, "--seeds", 1, "--rows", "student AFA", "X-Pool teacher"], REPO_ROOT)
    assert "student AFA seed 1: done before, kept" in second.stdout
    assert "X-Pool teacher seed 1: done before, kept" in second.stdout
    table = (out / "table.md").read_text()
    assert (
        "| student AFA |" in table and "| X-Pool teacher |" in table and "AFA on content %" in table
    )


def test_the_ablation_table_shows_the_shares_each_row_has_and_the_cost(tmp_path):
    import importlib.util

    path = REPO_ROOT / "tools" / "experiments" / "teachclip" / "teachclip_ablation.py"
    spec = importlib.util.spec_from_file_location("teachclip_ablation", path)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    metrics = {"t2v_r1": 10.0, "t2v_r5": 20.0, "t2v_sum_r": 40.0, "v2t_r1": 5.0}
    runs = [
        {"model": "CLIP4Clip meanP", "seed": s, "seconds": 10.0,
         "metrics": {**metrics, "t2v_r1": r1, "content_share_chance": 12.5},
         "cost": {"bytes_per_video": 256, "ms_per_query": 0.03}}
        for s, r1 in ((1, 10.0), (2, 14.0))
    ] + [
        {"model": "student AFA", "seed": s, "seconds": 12.0,
         "metrics": {**metrics, "afa_content_share": share, "content_share_chance": 12.5},
         "cost": {"bytes_per_video": 256, "ms_per_query": 0.03}}
        for s, share in ((1, 40.0), (2, 60.0))
    ]  # fmt: skip
    dataset = {"k": 1, "num_frames": 8, "distractors": "neutral", "splits": {"test": 6}}
    dataset["captions"] = {"test": 12}
    table = tool.ablation_table(runs, ["CLIP4Clip meanP", "student AFA"], [1, 2], dataset)
    lines = table.splitlines()
    assert "AFA on content %" in lines[0] and "X-CLIP's relevance %" not in lines[0]
    assert lines[2].startswith("| CLIP4Clip meanP | 12.0 ± 2.8 |") and "| – |" in lines[2]
    assert "| 50.0 ± 14.1 | 256 | 0.030 ± 0.000 |" in lines[3]
    assert "content in 1 of 8 frames, neutral distractors" in table and "chance" in table
    # the same table as a benchmark-results entry renders with the docs' table tool
    entry = tool.benchmark_entry(runs, ["CLIP4Clip meanP", "student AFA"], [1, 2], dataset, "x")
    spec = importlib.util.spec_from_file_location(
        "benchmark_tables", REPO_ROOT / "tools" / "misc" / "benchmark_tables.py"
    )
    tables = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tables)
    results_dir = tmp_path / "docs" / "benchmarks" / "results"
    results_dir.mkdir(parents=True)
    paper = {"paper": "teachclip", "tables": {"finegrained": entry}}
    (results_dir / "teachclip.json").write_text(json.dumps(paper))
    rendered = tables.render(tables.Results(tmp_path), "teachclip/finegrained", "test")
    assert "| CLIP4Clip meanP | 12.0 ± 2.8 |" in rendered and "| 50.0 ± 14.1 | 256 |" in rendered
