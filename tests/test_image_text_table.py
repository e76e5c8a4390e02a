"""tools/experiments/bagformer/image_text_table.py: test metrics of run folders (log.txt as
the runner writes it)
to a mean ± spread table, with the config kept beside the numbers."""

import json
import statistics
import subprocess
import sys

import pytest
from conftest import REPO_ROOT, load_tool

TOOL = REPO_ROOT / "tools" / "experiments" / "bagformer" / "image_text_table.py"
NAMES = ("txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10", "r_mean")


def _run_folder(root, seed, base, finished=True):
    """A run folder as runner_portable writes it: the config as an indented JSON block,
    then one JSON line per logged split (train and val each epoch; at the end
    ``{"test_<split>": metrics}`` for the best epoch)."""
    folder = root / f"seed{seed}"
    folder.mkdir()
    config = {"run": {"seed": seed, "max_epoch": 2}, "model": {"arch": "albef_retrieval"}}
    lines = [json.dumps(config, indent=4)]
    lines.append(json.dumps({"train_lr": "0.001", "train_loss": "4.1"}))
    lines.append(json.dumps({"val_r_mean": 99.0, "val_agg_metrics": 99.0}))  # not in the table
    if finished:
        test = {k: base + i for i, k in enumerate(NAMES)}
        test.update({f"itc_{k}": base / 2 + i for i, k in enumerate(NAMES)})
        lines.append(json.dumps({"test_test": test}))
    (folder / "log.txt").write_text("\n".join(lines) + "\n")
    return folder


def test_table_of_three_seeds(tmp_path):
    folders = [_run_folder(tmp_path, seed, base) for seed, base in ((42, 10), (43, 20), (44, 60))]
    out = tmp_path / "table"
    rows = ["ITC only=itc_", "ITM re-rank="]
    result = subprocess.run(
        [sys.executable, str(TOOL), *map(str, folders), "--rows", *rows, "--out", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
    )
    assert result.returncode == 0, result.stderr
    lines = (out / "table.md").read_text().splitlines()
    assert result.stdout.splitlines() == lines
    itc = [5.0, 10.0, 30.0]  # base / 2 of each seed, first column
    mean, std = statistics.mean(itc), statistics.stdev(itc)
    assert lines[2].startswith(f"| ITC only | 42,43,44 | {mean:.1f} ± {std:.1f} |")
    rerank_mean = statistics.mean([10 + 6, 20 + 6, 60 + 6])  # r_mean is the 7th name
    assert lines[3].startswith("| ITM re-rank | 42,43,44 |")
    assert lines[3].endswith(f"| {rerank_mean:.1f} ± {statistics.stdev([16, 26, 66]):.1f} |")
    saved = json.loads((out / "results.json").read_text())
    assert [run["config"]["run"]["seed"] for run in saved] == [42, 43, 44]
    assert saved[0]["test"]["itc_r_mean"] == 5 + 6


def test_unfinished_run_and_missing_metric_are_named(tmp_path):
    image_text_table = load_tool("image_text_table")
    unfinished = _run_folder(tmp_path, 42, 10, finished=False)
    with pytest.raises(ValueError, match=f"{unfinished / 'log.txt'}: no test_test metrics"):
        image_text_table.read_run(unfinished)
    with pytest.raises(FileNotFoundError, match="no log.txt"):
        image_text_table.read_run(tmp_path / "nowhere")
    run = image_text_table.read_run(_run_folder(tmp_path, 43, 10))
    with pytest.raises(KeyError, match="row 'BagFormer': no test metric 'bag_txt_r1'"):
        image_text_table.table([run], [("BagFormer", "bag_")])
