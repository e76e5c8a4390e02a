"""`plugzoo demo` end to end (quick settings): console progress, Markdown, PNG and JSON."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from plugins.report import StageResult, jsonable, write_report


@pytest.mark.slow
def test_quick_demo_writes_a_complete_report(tmp_path):
    out = tmp_path / "run"
    # a relative --out, as the default runs/demo-<time> is: stages that change directory
    # must still find their files
    result = subprocess.run(
        [sys.executable, "-m", "plugins.cli", "demo", "--quick", "--out", "run"],
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[1/7] environment checks" in result.stdout
    assert "[2/7] STH (mmaction2)" in result.stdout
    assert "[3/7] recbole baseline" in result.stdout
    assert "[4/7] UPSR (recbole)" in result.stdout
    assert "[5/7] salesforce-lavis baseline" in result.stdout
    assert "[6/7] TeachCLIP (salesforce-lavis)" in result.stdout
    assert "[7/7] BagFormer (salesforce-lavis)" in result.stdout
    assert "plugzoo demo (quick settings): 7 stages, expected about" in result.stdout
    assert result.stdout.count("left in the demo") >= 7  # as each stage starts, at least

    report = (out / "report.md").read_text()
    assert "## RecBole baseline: SASRec on ML-100K" in report
    assert "| SASRec (RecBole) |" in report
    assert "Failed stages" not in report

    results = json.loads((out / "results.json").read_text())
    assert results["failures"] == {}
    for stage in results["stages"][1:]:  # every stage says whether its rows are separated
        assert isinstance(stage["config"]["too_small_to_separate"], list), stage["name"]
    sasrec = next(s for s in results["stages"] if s["name"] == "recbole.sasrec_baseline")
    (row,) = sasrec["rows"]
    assert 0 < row["ndcg@10"] <= row["recall@10"] <= 1
    assert sasrec["config"]["model"] == "SASRec" and sasrec["config"]["epochs"] == 1
    assert sasrec["config"]["seed"] == 2020
    (figure,) = sasrec["figures"]
    with Image.open(out / figure) as image:
        assert image.format == "PNG" and image.size[0] > 300

    sth = next(s for s in results["stages"] if s["name"] == "mmaction.sth_motion")
    assert [r["model"] for r in sth["rows"]] == ["TSN-R18", "TSM-R18", "STH-R18 (r=1/4)"]
    for row in sth["rows"]:
        assert 0 <= row["top1"] <= 1 and row["GFLOPs"] > 0
    flops = {r["model"]: r["GFLOPs"] for r in sth["rows"]}
    assert flops["STH-R18 (r=1/4)"] < flops["TSM-R18"]
    assert sth["config"]["configs"]["STH-R18 (r=1/4)"]["model"]["backbone"]["type"] == "ResNetSTH"
    assert "## STH (MMAction2)" in report

    upsr = next(s for s in results["stages"] if s["name"] == "recbole.upsr")
    assert [r["model"] for r in upsr["rows"]] == ["Pop", "ItemKNN", "SASRec", "UPSR"]
    for row in upsr["rows"]:
        assert 0 <= row["ndcg@10"] <= row["recall@10"] <= 1
    assert upsr["config"]["backbone"] == "tiny" and upsr["config"]["slice"]["users"] == 30
    assert "## UPSR beside SASRec, Pop and ItemKNN on an ML-100K user slice" in report
    with Image.open(out / sth["figures"][0]) as image:
        assert image.format == "PNG"

    clip4clip = next(s for s in results["stages"] if s["name"] == "lavis.clip4clip_baseline")
    assert [r["model"] for r in clip4clip["rows"]] == ["CLIP4Clip meanP", "CLIP4Clip seqTransf"]
    for row in clip4clip["rows"]:
        assert 0 <= row["t2v R@1"] <= row["t2v R@5"] <= row["t2v R@10"] <= 100
    configs = clip4clip["config"]["configs"]
    assert configs["CLIP4Clip seqTransf"]["model"]["model_type"] == "seqTransf"
    assert configs["CLIP4Clip meanP"]["run"]["seed"] == 42
    assert "## LAVIS baseline: CLIP4Clip text-video retrieval" in report

    teachclip = next(s for s in results["stages"] if s["name"] == "lavis.teachclip")
    rows = {r["model"]: r for r in teachclip["rows"]}
    assert list(rows) == [
        "X-CLIP teacher",
        "X-Pool teacher",
        "CLIP4Clip seqTransf",
        "TeachCLIP student",
    ]
    cost = "ms per query at N=10,000"
    # the student stores and scores what CLIP4Clip does; the teachers store per-frame rows
    assert (
        rows["TeachCLIP student"]["bytes per video"]
        == rows["CLIP4Clip seqTransf"]["bytes per video"]
    )
    assert (
        rows["X-CLIP teacher"]["bytes per video"] > 8 * rows["TeachCLIP student"]["bytes per video"]
    )
    # the cost column holds timings (a loaded machine can reorder close ones): present, not ranked
    assert all(math.isfinite(row[cost]) and row[cost] > 0 for row in rows.values())
    student = teachclip["config"]["configs"]["TeachCLIP student"]["model"]
    assert set(student["teachers"]) == {"xclip", "xpool"}
    # every model starts from the frame-caption CLIP and reports its weight on content frames
    assert Path(student["pretrained"]).name.startswith("frame_clip-")
    share = "weight on content frames %"
    assert rows["CLIP4Clip seqTransf"][share] is None
    assert all(0 <= rows[name][share] <= 100 for name in rows if name != "CLIP4Clip seqTransf")
    with Image.open(out / teachclip["figures"][0]) as image:
        assert image.format == "PNG"
    assert "## TeachCLIP (LAVIS)" in report

    bagformer = next(s for s in results["stages"] if s["name"] == "lavis.bagformer")
    rows = {r["model"].split(" (")[0]: r for r in bagformer["rows"]}
    assert list(rows) == ["ALBEF ITC", "ALBEF ITM re-rank", "BagFormer recall", "BagFormer merge"]
    for row in rows.values():
        assert 0 <= row["text-to-image R@1"] <= 100 and 0 <= row["r_mean"] <= 100
    cost = "ms per query at N=10,000"
    # a [CLS] vector per image against every token of it; re-ranking adds the fusion encoder
    assert rows["BagFormer recall"]["bytes per image"] == 37 * rows["ALBEF ITC"]["bytes per image"]
    assert all(math.isfinite(row[cost]) and row[cost] > 0 for row in rows.values())
    configs = bagformer["config"]["configs"]
    assert configs["BagFormer"]["model"]["arch"] == "bagformer_retrieval"
    assert configs["ALBEF"]["run"]["seed"] == configs["BagFormer"]["run"]["seed"] == 42
    with Image.open(out / bagformer["figures"][0]) as image:
        assert image.format == "PNG"
    assert "## BagFormer (LAVIS)" in report


def test_report_serialises_host_config_values_and_lists_failures(tmp_path):
    import numpy as np
    import torch

    stage = StageResult(
        name="s",
        title="T",
        summary="S",
        rows=[{"m": np.float64(0.5)}],
        config={"device": torch.device("cpu"), "k": np.int64(3), "p": tmp_path},
    )
    write_report(tmp_path, [stage], {"x:y": "ValueError: boom"})
    data = json.loads((tmp_path / "results.json").read_text())
    assert data["stages"][0]["config"] == {"device": "cpu", "k": 3, "p": str(tmp_path)}
    assert data["stages"][0]["rows"] == [{"m": 0.5}]
    assert "`x:y`: ValueError: boom" in (tmp_path / "report.md").read_text()
    assert jsonable({"a": (1, np.float32(2.0))}) == {"a": [1, 2.0]}
    assert jsonable([float("nan"), np.float64("inf")]) == ["nan", "inf"]
    assert jsonable(torch.tensor([[1, 2], [3, 4]])) == [[1, 2], [3, 4]]
