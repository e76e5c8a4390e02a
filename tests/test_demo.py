"""`plugzoo demo` end to end (quick settings): console progress, Markdown, PNG and JSON."""

import json
import subprocess
import sys

import pytest
from PIL import Image

from plugins.report import StageResult, _jsonable, write_report


@pytest.mark.slow
def test_quick_demo_writes_a_complete_report(tmp_path):
    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, "-m", "plugins.cli", "demo", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[1/2] environment checks" in result.stdout
    assert "[2/2] recbole baseline" in result.stdout

    report = (out / "report.md").read_text()
    assert "## RecBole baseline: SASRec on ML-100K" in report
    assert "| SASRec (RecBole) |" in report
    assert "Failed stages" not in report

    results = json.loads((out / "results.json").read_text())
    assert results["failures"] == {}
    sasrec = next(s for s in results["stages"] if s["name"] == "recbole.sasrec_baseline")
    (row,) = sasrec["rows"]
    assert 0 < row["ndcg@10"] <= row["recall@10"] <= 1
    assert sasrec["config"]["model"] == "SASRec" and sasrec["config"]["epochs"] == 1
    assert sasrec["config"]["seed"] == 2020
    (figure,) = sasrec["figures"]
    with Image.open(out / figure) as image:
        assert image.format == "PNG" and image.size[0] > 300


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
    assert _jsonable({"a": (1, np.float32(2.0))}) == {"a": [1, 2.0]}
    assert _jsonable([float("nan"), np.float64("inf")]) == ["nan", "inf"]
    assert _jsonable(torch.tensor([[1, 2], [3, 4]])) == [[1, 2], [3, 4]]
