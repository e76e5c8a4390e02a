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
def test_ablation_trains_teachers_once_and_every_row(tmp_path):
    tool = REPO_ROOT / "tools" / "experiments" / "teachclip" / "teachclip_ablation.py"
    out = tmp_path / "ablation"
    args = ["--out", out, "--seeds", 1, "--epochs", 1, "--teacher-epochs", 1]
    args += ["--train", 4, "--val", 1, "--test", 2]
    args += ["--options", "run.batch_size_train=4"]
    first = _run([tool, *args, "--rows", "+ AFA", "TeachCLIP, 1 teacher (X-CLIP)"], REPO_ROOT)
    assert "teacher xclip: t2v R@1" in first.stdout and "teacher xpool: t2v R@1" in first.stdout
    results = json.loads((out / "results.json").read_text())
    runs = {r["model"]: r for r in results["runs"]}
    assert runs["+ AFA"]["config"]["model"]["teachers"] == {"xclip": None, "xpool": None}
    assert runs["+ AFA"]["config"]["model"]["loss_weights"]["contrastive"] == 1.0
    taught = runs["TeachCLIP, 1 teacher (X-CLIP)"]["config"]["model"]["teachers"]
    assert taught["xpool"] is None and taught["xclip"]["checkpoint"].endswith(
        "teacher-xclip/checkpoint_best.pth"
    )
    # a second call reuses the teachers and the finished rows, and runs the missing one
    second = _run(
        [tool, *args, "--rows", "+ AFA", "TeachCLIP, 2 teachers (X-CLIP + X-Pool)"], REPO_ROOT
    )
    assert (
        "teacher xclip: reusing" in second.stdout and "+ AFA seed 1: done before" in second.stdout
    )
    table = (out / "table.md").read_text()
    assert "| teacher xclip (seed 42) |" in table and "| TeachCLIP, 2 teachers" in table
