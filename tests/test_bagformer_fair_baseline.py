"""tools/experiments/bagformer/bagformer_fair_baseline.py: the compute read from LAVIS's
training log, the re-rank stage gains, and (slow) the whole protocol at tiny sizes, resumed."""

import json

import pytest
from conftest import load_tool

fair = load_tool("bagformer_fair_baseline")

# what LAVIS's BaseTask logs (stderr) and its MetricLogger prints (stdout) for two epochs
LOG = """\
2026-12-06 22:54:18,378 [INFO] Start training epoch 0
2026-12-06 22:54:18,446 [INFO] Start training epoch 0, 45 iters per inner epoch.
Train: data epoch: [0]  [ 0/45]  eta: 0:01:17  lr: 0.000010  loss: 18.3243  time: 1.7314
Train: data epoch: [0]  [44/45]  eta: 0:00:00  lr: 0.000100  loss: 12.1000  time: 2.0000
Train: data epoch: [0] Total time: 0:02:39 (3.5367 s / it)
Evaluation: Total time: 0:00:06 (0.1262 s / it)
2026-12-06 22:57:18,446 [INFO] Start training epoch 1, 45 iters per inner epoch.
Train: data epoch: [1] Total time: 0:01:30 (2.0000 s / it)
"""


def test_training_compute_counts_iterations_and_their_seconds_not_evaluation():
    compute = fair.training_compute(LOG)
    assert compute == {"train_seconds": round(45 * 3.5367 + 45 * 2.0, 1), "steps": 90, "epochs": 2}
    with pytest.raises(ValueError, match=r"epochs started \[0, 1\], finished \[0\]"):
        fair.training_compute(LOG.rsplit("Train: data epoch: [1]", 1)[0])


def _run(r_means: dict, seconds=100.0, steps=450):
    """A finished run's record whose every metric of a prefix is that prefix's value."""
    metrics = {f"{prefix}{m}": value for prefix, value in r_means.items() for m in fair.METRICS}
    return {"metrics": metrics, "train_seconds": seconds, "steps": steps}


def test_stage_gains_compare_each_rerank_with_its_own_first_stage_per_seed():
    runs = {
        ("albef", 42): _run({"itc_": 30.0, "": 36.0}),
        ("albef", 43): _run({"itc_": 32.0, "": 35.0}),
        ("albef", 44): _run({"itc_": 31.0, "": 37.0}),
        ("bagformer", 42): _run({"recall_": 60.0, "rank_": 50.0, "": 61.0}),
        ("bagformer", 43): _run({"recall_": 62.0, "rank_": 55.0, "": 60.0}),
        ("bagformer", 44): _run({"recall_": 61.0, "rank_": 52.0, "": 62.0}),
    }
    rows = fair.row_records(runs)
    assert set(rows["BagFormer rank"]) == {42, 43, 44}
    assert rows["ALBEF ITC (dual encoder)"][43]["metrics"]["r_mean"] == 32.0
    gains = {g["stage"]: g for g in fair.stage_gains(rows, [42, 43, 44])}
    albef = gains["ALBEF ITC + ITM re-rank (top k_test)"]
    assert albef["r_mean gain"] == pytest.approx(5.0) and albef["seeds improved"] == "3 of 3"
    assert albef["beyond spread"] is True  # 5 > 1 + 1
    merge = gains["BagFormer merge"]
    assert merge["r_mean gain"] == pytest.approx(0.0) and merge["seeds improved"] == "2 of 3"
    assert merge["beyond spread"] is False
    assert gains["BagFormer rank"]["r_mean gain"] == pytest.approx(-8.67)
    assert fair.stage_gains(rows, [42])[0]["beyond spread"] is None  # one seed: no spread
    dataset = {"splits": {"test": 100}, "captions": {"test": 300}}
    pretrain = {"epochs": 30, "steps": 1350, "train_seconds": 2700.0}
    zero_shot = {"itc_r_mean": 5.25, "r_mean": 6.5}
    table = fair.fair_table(rows, [42, 43, 44], pretrain, dataset, zero_shot)
    assert "| ALBEF ITC (dual encoder) | 31.0 ± 1.0 |" in table
    assert "| BagFormer merge | BagFormer recall | +0.0 | 2 of 3 | 2.0 | no |" in table
    assert "1350 steps, 2700 s of training; before fine-tuning it scores 5.2 mean" in table
    entry = fair.benchmark_entry(rows, [42, 43, 44], table, "python ...")
    assert entry["rows"][0][0] == "ALBEF ITC (dual encoder)"
    assert entry["rows"][0][7] == [31.0, 1.0] and entry["rows"][0][9] == [450.0, 0.0]
    assert "better in 3 of 3 seeds" in entry["note"]


@pytest.mark.slow
def test_the_protocol_runs_end_to_end_at_tiny_sizes_and_resumes(tmp_path, monkeypatch):
    from retrieval_ext.datasets.image_text_synthetic import write_image_text_dataset

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    data = tmp_path / "data"
    write_image_text_dataset(data, {"train": 8, "val": 4, "test": 4}, seed=3)
    out = tmp_path / "out"
    argv = ["--out", str(out), "--data", str(data), "--seeds", "42", "--jobs", "2"]
    argv += ["--pretrain-epochs", "1", "--epochs", "1", "--runs", "albef", "bagformer"]
    argv += ["--dictionary-flags=--min-count 2"]
    argv += ["--pretrain-options", "model.queue_size=8", "run.batch_size_train=8"]
    argv += ["--options", "run.batch_size_train=8", "model.queue_size=8", "run.k_test=4"]
    assert fair.main(argv) == 0
    entry = json.loads((out / "table.json").read_text())
    assert [row[0] for row in entry["rows"]] == [
        "ALBEF ITC (dual encoder)",
        "ALBEF ITC + ITM re-rank (top k_test)",
        "BagFormer recall",
        "BagFormer rank",
        "BagFormer merge",
    ]
    assert all(row[-1] == [3.0, 0.0] for row in entry["rows"])  # 24 pairs / 8: equal steps
    assert entry["pretrain"]["steps"] == 3
    assert set(entry["zero_shot"]) == {"itc_r_mean", "r_mean"}
    dictionary = json.loads((out / "dictionary.json").read_text())
    assert (data / fair.DERIVED).is_file() and dictionary["reference"]["recall"] > 0
    results = json.loads((out / "results.json").read_text())
    pretrained = str(out / "pretrain" / "pretrain" / "checkpoint_latest.pth")
    assert all(f"model.pretrained={pretrained}" in run["command"] for run in results["runs"])
    # a second call finds every run done and trains nothing
    before = (out / "runs" / "albef-s42" / "result.json").stat().st_mtime_ns
    assert fair.main(argv) == 0
    assert (out / "runs" / "albef-s42" / "result.json").stat().st_mtime_ns == before
    # the same folder asked for another recipe is refused, naming the stale result
    other = list(argv)
    other[argv.index("--pretrain-epochs") + 1] = "2"
    with pytest.raises(ValueError, match=r"pretrain/result.json: a result of another command"):
        fair.main(other)
    # another fine-tuning recipe from the same pre-training: nothing is pre-trained again
    again = tmp_path / "again"
    argv2 = ["--pretrained-from", str(out), *(a if a != str(out) else str(again) for a in argv)]
    argv2[argv2.index("--runs") + 1 : argv2.index("--runs") + 3] = ["bagformer"]
    argv2 += ["model.itm_hard_negatives=true"]  # appended to --options, the last flag
    assert fair.main(argv2) == 0
    assert not (again / "pretrain").exists() and not (again / "zero_shot").exists()
    results2 = json.loads((again / "results.json").read_text())
    assert [run["run"] for run in results2["runs"]] == ["bagformer"]
    assert f"model.pretrained={pretrained}" in results2["runs"][0]["command"]
    assert "model.itm_hard_negatives=true" in results2["runs"][0]["command"]
    assert results2["pretrain"] == results["pretrain"]


def test_pretrained_from_names_what_the_earlier_folder_lacks(tmp_path):
    (tmp_path / "earlier" / "pretrain").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"earlier: no pretrain/result.json"):
        fair.main(["--out", str(tmp_path / "out"), "--pretrained-from", str(tmp_path / "earlier")])
