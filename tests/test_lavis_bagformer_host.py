"""BagFormer trained and evaluated through the LAVIS tools on generated images: one
process, re-evaluation from the best checkpoint, and 2-process torchrun gloo DDP."""

import json
import sys

import pytest
from conftest import REPO_ROOT
from retrieval_helpers import image_text_options, run_lavis_tool, tool_metrics

pytestmark = pytest.mark.slow

CONFIG = REPO_ROOT / "configs" / "lavis" / "bagformer" / "embedded.yaml"
TRAIN = REPO_ROOT / "tools" / "lavis_train.py"
EVALUATE = REPO_ROOT / "tools" / "lavis_evaluate.py"
SETS = ("", "recall_", "rank_", "cls_")


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    from retrieval_ext.datasets.image_text_synthetic import write_image_text_dataset

    root = tmp_path_factory.mktemp("image_text")
    write_image_text_dataset(root, {"train": 16, "val": 4, "test": 6}, seed=1)
    return root


def _options(data, out, **run):
    return image_text_options(
        data, out, (f"model.entity_dictionary={data / 'entities.txt'}",), **run
    )


@pytest.mark.parametrize("interaction", ["bagwise", "tokenwise", "cls_token"])
def test_bagformer_trains_and_evaluates_with_the_lavis_tools(tiny_data, tmp_path, interaction):
    extra = [f"model.interaction={interaction}"]
    options = _options(tiny_data, tmp_path / "runs", max_epoch=2, batch_size_train=8) + extra
    trained = run_lavis_tool(
        [sys.executable, str(TRAIN), "--cfg-path", str(CONFIG), "--options", *options], tmp_path
    )
    metrics = tool_metrics(trained)
    for name in ("txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r_mean", "r_mean"):
        assert all(f"{prefix}{name}" in metrics for prefix in SETS), name
    assert metrics["agg_metrics"] == metrics["r_mean"]  # selected on merge
    job = tmp_path / "runs" / "job"
    assert (job / "checkpoint_best.pth").is_file()
    log = (job / "log.txt").read_text()
    assert '"val_best_epoch"' in log and '"test_test"' in log and '"train_loss"' in log
    config = json.loads(log.split("\n}\n")[0] + "}")  # results are written with their config
    assert config["model"]["arch"] == "bagformer_retrieval"
    assert config["model"]["interaction"] == interaction and config["run"]["seed"] == 42

    evaluated = run_lavis_tool(
        [
            sys.executable,
            str(EVALUATE),
            "--cfg-path",
            str(CONFIG),
            "--options",
            *_options(tiny_data, tmp_path / "eval"),
            *extra,
            "model.load_finetuned=true",
            f"model.finetuned={job / 'checkpoint_best.pth'}",
        ],
        tmp_path,
    )
    assert tool_metrics(evaluated) == pytest.approx(metrics)  # the best checkpoint reproduces them


def test_bagformer_two_process_gloo_ddp_trains_and_evaluates(tiny_data, tmp_path):
    ddp = run_lavis_tool(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            "2",
            str(TRAIN),
            "--cfg-path",
            str(CONFIG),
            "--options",
            *_options(tiny_data, tmp_path / "ddp", max_epoch=1, batch_size_train=4),
        ],
        tmp_path,
    )
    config = json.loads((tmp_path / "ddp" / "job" / "log.txt").read_text().split("\n}\n")[0] + "}")
    assert config["run"]["distributed"] is True and config["run"]["dist_backend"] == "gloo"
    assert config["run"]["world_size"] == 2
    metrics = tool_metrics(ddp)
    for prefix in SETS:  # 6 test images: every text finds its image within 10
        assert metrics[f"{prefix}img_r10"] == 100.0, prefix
    assert metrics["agg_metrics"] == metrics["r_mean"]
    # the rank stage's rows were split between the two processes and summed: one process
    # scoring the same checkpoint alone gives the same numbers
    single = run_lavis_tool(
        [
            sys.executable,
            str(EVALUATE),
            "--cfg-path",
            str(CONFIG),
            "--options",
            *_options(tiny_data, tmp_path / "eval"),
            "model.load_finetuned=true",
            f"model.finetuned={tmp_path / 'ddp' / 'job' / 'checkpoint_best.pth'}",
        ],
        tmp_path,
    )
    assert tool_metrics(single) == pytest.approx(metrics)
