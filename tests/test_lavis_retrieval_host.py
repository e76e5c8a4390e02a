"""End to end through LAVIS's Config, registry, task and our runner: the train and evaluate
tools on real mp4s, resume, and 2-process torchrun gloo DDP against one process."""

import json
import sys

import pytest
import torch
from conftest import REPO_ROOT
from retrieval_helpers import run_lavis_tool, tool_metrics, write_tiny_embedded

pytestmark = pytest.mark.slow

CONFIG = REPO_ROOT / "configs" / "lavis" / "clip4clip" / "embedded_meanP.yaml"
TRAIN = REPO_ROOT / "tools" / "lavis_train.py"
EVALUATE = REPO_ROOT / "tools" / "lavis_evaluate.py"
EXPORT = REPO_ROOT / "tools" / "analysis_tools" / "retrieval_export.py"


def _options(data, out, **run):
    ann = data / "annotations"
    prefix = "datasets.embedded_text_video.build_info"
    options = [
        f"{prefix}.annotations.train.storage={ann / 'train.json'}",
        f"{prefix}.annotations.val.storage={ann / 'val.json'}",
        f"{prefix}.annotations.test.storage={ann / 'test.json'}",
        f"{prefix}.videos.storage={data / 'videos'}",
        f"run.output_dir={out}",
        "run.job_id=job",
        "run.warmup_steps=2",
        "model.clip_config.vision_cfg.layers=1",
        "model.clip_config.text_cfg.layers=1",
    ]
    return options + [f"run.{key}={value}" for key, value in run.items()]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    return write_tiny_embedded(tmp_path_factory.mktemp("video_text"), train=8, val=3, test=3)


def _train_losses(job):
    lines = (job / "log.txt").read_text().splitlines()
    return [json.loads(line)["train_loss"] for line in lines if '"train_loss"' in line]


def test_a_resumed_run_repeats_the_uninterrupted_one(tiny_data, tmp_path):
    """Stopped after epoch 2 and resumed, training sees the same batches, frame offsets
    and weights in epoch 3 as a run that never stopped (a constant rate after warm-up, so
    the schedule does not depend on max_epoch)."""
    run = dict(batch_size_train=4, min_lr=1e-3, num_workers=1)

    def train(out, **extra):
        options = _options(tiny_data, out, **run, **extra)
        return run_lavis_tool(
            [sys.executable, str(TRAIN), "--cfg-path", str(CONFIG), "--options", *options], tmp_path
        )

    straight = train(tmp_path / "straight", max_epoch=3)
    train(tmp_path / "first", max_epoch=2)
    resumed = train(
        tmp_path / "resumed",
        max_epoch=3,
        resume_ckpt_path=tmp_path / "first" / "job" / "checkpoint_latest.pth",
    )
    straight_losses = _train_losses(tmp_path / "straight" / "job")
    assert len(straight_losses) == 3
    assert _train_losses(tmp_path / "resumed" / "job") == straight_losses[2:]  # "%.3f"
    final = [
        torch.load(out / "job" / "checkpoint_latest.pth", weights_only=True)
        for out in (tmp_path / "straight", tmp_path / "resumed")
    ]
    assert final[0]["epoch"] == final[1]["epoch"] == 2
    for name, weights in final[0]["model"].items():
        assert torch.allclose(weights, final[1]["model"][name], atol=1e-6), name
    assert tool_metrics(resumed) == pytest.approx(tool_metrics(straight), rel=1e-5)


def test_train_resume_and_evaluate_with_the_tools(tiny_data, tmp_path):
    out = tmp_path / "runs"
    options = _options(tiny_data, out, max_epoch=2, batch_size_train=8)
    trained = run_lavis_tool(
        [sys.executable, str(TRAIN), "--cfg-path", str(CONFIG), "--options", *options], tmp_path
    )
    metrics = tool_metrics(trained)
    assert set(metrics) >= {"t2v_r1", "t2v_r50", "t2v_medr", "v2t_meanr", "agg_metrics"}
    assert metrics["agg_metrics"] == metrics["t2v_sum_r"]
    job = out / "job"
    assert (job / "checkpoint_best.pth").is_file() and (job / "checkpoint_latest.pth").is_file()
    log = (job / "log.txt").read_text()
    assert '"val_best_epoch"' in log and '"test_test"' in log

    resumed = run_lavis_tool(
        [
            sys.executable,
            str(TRAIN),
            "--cfg-path",
            str(CONFIG),
            "--options",
            *_options(
                tiny_data,
                tmp_path / "resumed",
                max_epoch=3,
                batch_size_train=8,
                resume_ckpt_path=job / "checkpoint_latest.pth",
            ),
        ],
        tmp_path,
    )
    assert "Resumed from" in resumed.stderr and "at epoch 2" in resumed.stderr
    assert "Start training epoch 2" in resumed.stderr
    assert "Start training epoch 0" not in resumed.stderr

    evaluated = run_lavis_tool(
        [
            sys.executable,
            str(EVALUATE),
            "--cfg-path",
            str(CONFIG),
            "--options",
            *_options(tiny_data, tmp_path / "eval"),
            "model.load_finetuned=true",
            f"model.finetuned={job / 'checkpoint_best.pth'}",
        ],
        tmp_path,
    )
    assert tool_metrics(evaluated) == metrics  # the best checkpoint reproduces the test metrics

    exported = run_lavis_tool(
        [
            sys.executable,
            str(EXPORT),
            "--cfg-path",
            str(CONFIG),
            "--out",
            str(tmp_path / "emb"),
            "--options",
            *_options(tiny_data, tmp_path / "export"),
            "model.load_finetuned=true",
            f"model.finetuned={job / 'checkpoint_best.pth'}",
        ],
        tmp_path,
    )
    report = json.loads(exported.stdout.strip().splitlines()[-1])
    assert (report["videos"], report["texts"]) == (6, 12)
    assert {p.name for p in (tmp_path / "emb").iterdir()} == {
        "videos.npy",
        "texts.npy",
        "meta.json",
    }
    for key in ("t2v_r1", "t2v_r5", "v2t_r1", "v2t_r5"):  # same model, same data: same ranking
        assert abs(report["dense"][key] - metrics[key]) <= 100 / 6 + 1e-6, key
        assert report["faiss_flat"][key] == pytest.approx(report["dense"][key], abs=100 / 6 + 1e-6)


def test_two_process_gloo_ddp_matches_one_process(tiny_data, tmp_path):
    """Unshuffled, 2 processes x 4 clips see the same batches as 1 process x 8; with the
    features all-gathered, training follows the same path up to float rounding."""
    common = {"max_epoch": 2, "train_shuffle": "false"}
    single = run_lavis_tool(
        [
            sys.executable,
            str(TRAIN),
            "--cfg-path",
            str(CONFIG),
            "--options",
            *_options(tiny_data, tmp_path / "single", batch_size_train=8, **common),
        ],
        tmp_path,
    )
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
            *_options(tiny_data, tmp_path / "ddp", batch_size_train=4, **common),
        ],
        tmp_path,
    )
    assert "distributed init" not in ddp.stderr  # ours, not LAVIS's CUDA/NCCL path
    assert "Evaluation loader sharded across 2 processes" in ddp.stderr
    config = json.loads((tmp_path / "ddp" / "job" / "log.txt").read_text().split("\n}\n")[0] + "}")
    assert config["run"]["distributed"] is True and config["run"]["dist_backend"] == "gloo"
    assert config["run"]["world_size"] == 2
    a, b = tool_metrics(single), tool_metrics(ddp)
    # float rounding may move one query by one place: 12 test captions, 6 test videos
    for direction, queries in (("t2v", 12), ("v2t", 6)):
        for k in (1, 5, 10):
            key = f"{direction}_r{k}"
            assert abs(a[key] - b[key]) <= 100 / queries + 1e-6, (key, a[key], b[key])
        key = f"{direction}_meanr"
        assert abs(a[key] - b[key]) <= 1 / queries + 1e-6, (key, a[key], b[key])
    losses = [
        [
            json.loads(line)["train_loss"]
            for line in (tmp_path / d / "job" / "log.txt").read_text().splitlines()
            if line.startswith('{"train_')
        ]
        for d in ("single", "ddp")
    ]
    assert len(losses[0]) == len(losses[1]) == 2
    assert losses[0] == pytest.approx(losses[1], abs=2e-3)


def test_two_process_resume_tests_the_new_best_on_every_process(tiny_data, tmp_path):
    """Only the main process sees validation metrics; after a resume the others still hold
    the earlier run's best path unless the main process shares its own."""
    train = [sys.executable, str(TRAIN), "--cfg-path", str(CONFIG), "--options"]
    first = _options(tiny_data, tmp_path / "first", max_epoch=1, batch_size_train=8)
    run_lavis_tool(train + first, tmp_path)
    checkpoint = torch.load(tmp_path / "first" / "job" / "checkpoint_latest.pth", weights_only=True)
    # the earlier best is gone and any score beats it: epoch 2 saves a new best
    checkpoint.update(best_agg_metric=float("-inf"), best_checkpoint=str(tmp_path / "gone.pth"))
    torch.save(checkpoint, tmp_path / "resume.pth")
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    options = _options(
        tiny_data,
        tmp_path / "resumed",
        max_epoch=2,
        batch_size_train=4,
        resume_ckpt_path=tmp_path / "resume.pth",
    )
    resumed = run_lavis_tool(launcher + ["--nproc_per_node", "2"] + train[1:] + options, tmp_path)
    new_best = tmp_path / "resumed" / "job" / "checkpoint_best.pth"
    assert f"Loading checkpoint from {new_best}" in resumed.stderr
    assert set(tool_metrics(resumed)) >= {"t2v_r1", "v2t_r1"}


def test_a_training_split_smaller_than_one_batch_is_named(tiny_data, tmp_path, monkeypatch):
    from retrieval_ext.launch import build

    monkeypatch.chdir(tmp_path)
    options = _options(tiny_data, tmp_path / "runs", batch_size_train=64)
    *_, runner = build(str(CONFIG), options)
    with pytest.raises(
        ValueError, match="32 items per process, fewer than run.batch_size_train=64"
    ):
        runner.dataloaders  # noqa: B018  (the property builds the loaders)


@pytest.mark.parametrize("teacher", ["xclip_embedded", "xpool_embedded"])
def test_teachers_train_under_two_process_gloo_as_in_one(teacher, tiny_data, tmp_path):
    """TeachCLIP's teachers through the LAVIS tools, 1 process and 2 under torchrun (gloo)
    with the same batches: their interaction scores are all-gathered, so the runs agree
    (X-Pool's dropout is off: its masks differ between 1 and 2 processes)."""
    config = REPO_ROOT / "configs" / "lavis" / "teachclip" / f"{teacher}.yaml"
    common = {"max_epoch": 1, "train_shuffle": "false"}
    extra = ["model.dropout=0.0"] if teacher.startswith("xpool") else []
    runs = {}
    for name, launcher, batch in (
        ("single", [sys.executable], 8),
        ("ddp", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                 "--nproc_per_node", "2"], 4),
    ):  # fmt: skip
        options = _options(tiny_data, tmp_path / name, batch_size_train=batch, **common)
        runs[name] = run_lavis_tool(
            [*launcher, str(TRAIN), "--cfg-path", str(config), "--options", *options, *extra],
            tmp_path,
        )
    assert "Evaluation loader sharded across 2 processes" in runs["ddp"].stderr
    losses = [
        [float(x) for x in _train_losses(tmp_path / name / "job")] for name in ("single", "ddp")
    ]
    assert len(losses[0]) == 1 and losses[0] == pytest.approx(losses[1], abs=2e-3)
    a, b = tool_metrics(runs["single"]), tool_metrics(runs["ddp"])
    for direction, queries in (("t2v", 12), ("v2t", 6)):
        for k in (1, 5, 10):
            key = f"{direction}_r{k}"
            assert abs(a[key] - b[key]) <= 100 / queries + 1e-6, (key, a[key], b[key])


TEACHCLIP = REPO_ROOT / "configs" / "lavis" / "teachclip" / "teachclip_embedded.yaml"


@pytest.fixture(scope="module")
def tiny_teachers(tiny_data, tmp_path_factory):
    """The embedded teachers, one epoch each through the train tool: ``--options`` that
    point TeachCLIP's embedded config at them."""
    root = tmp_path_factory.mktemp("teachers")
    options = []
    for name in ("xclip-temporal", "xpool-tuned"):
        config = REPO_ROOT / "configs" / "lavis" / "teachclip" / f"{name}_embedded.yaml"
        run = _options(tiny_data, root, max_epoch=1, batch_size_train=8)
        run = [o.replace("run.job_id=job", f"run.job_id={name}") for o in run]
        run_lavis_tool(
            [sys.executable, str(TRAIN), "--cfg-path", str(config), "--options", *run], root
        )
        label = name.split("-")[0]
        options += [
            f"model.teachers.{label}.cfg_path={config}",
            f"model.teachers.{label}.checkpoint={root / name / 'checkpoint_best.pth'}",
            # the tiny layers _options trained it with
            f"model.teachers.{label}.model_overrides.clip_config.vision_cfg.layers=1",
            f"model.teachers.{label}.model_overrides.clip_config.text_cfg.layers=1",
        ]
    return options


def test_teachclip_trains_under_two_process_gloo_as_in_one_and_teachers_stay_frozen(
    tiny_data, tiny_teachers, tmp_path
):
    """TeachCLIP with both teachers through the LAVIS tools, 1 process and 2 under torchrun
    (gloo), same batches: the teachers' logits cover the gathered batch, so the runs agree;
    the teachers' weights are untouched and not in the student's checkpoint."""
    common = {"max_epoch": 1, "train_shuffle": "false"}
    runs = {}
    for name, launcher, batch in (
        ("single", [sys.executable], 8),
        ("ddp", [sys.executable, "-m", "torch.distributed.run", "--standalone",
                 "--nproc_per_node", "2"], 4),
    ):  # fmt: skip
        options = _options(tiny_data, tmp_path / name, batch_size_train=batch, **common)
        runs[name] = run_lavis_tool(
            [*launcher, str(TRAIN), "--cfg-path", str(TEACHCLIP), "--options", *options,
             *tiny_teachers],
            tmp_path,
        )  # fmt: skip
    assert "Evaluation loader sharded across 2 processes" in runs["ddp"].stderr
    losses = [
        [float(x) for x in _train_losses(tmp_path / name / "job")] for name in ("single", "ddp")
    ]
    assert len(losses[0]) == 1 and losses[0] == pytest.approx(losses[1], abs=2e-3)
    saved = torch.load(tmp_path / "ddp" / "job" / "checkpoint_best.pth", weights_only=True)
    assert saved["model"] and not any(k.startswith("teachers.") for k in saved["model"])
    assert any(k.startswith("afa.") for k in saved["model"])
    # rebuilt from the student's checkpoint and the teachers' files: the teachers equal
    # their files (never trained), the student its checkpoint
    from types import SimpleNamespace

    import retrieval_ext  # noqa: F401

    from lavis.common.config import Config
    from lavis.common.registry import registry

    options = _options(tiny_data, tmp_path / "check") + list(tiny_teachers)
    options += [
        "model.load_finetuned=true",
        f"model.finetuned={tmp_path / 'ddp' / 'job' / 'checkpoint_best.pth'}",
    ]
    cfg = Config(SimpleNamespace(cfg_path=str(TEACHCLIP), options=options))
    student = registry.get_model_class("teachclip_retrieval").from_config(cfg.model_cfg)
    for label, option in zip(("xclip", "xpool"), tiny_teachers[1::4], strict=True):
        reference = torch.load(option.split("=", 1)[1], weights_only=True)["model"]
        for key, value in student.teachers[label].state_dict().items():
            assert torch.equal(value, reference[key]), (label, key)
    for key, value in saved["model"].items():
        assert torch.equal(student.state_dict()[key], value), key


def test_teachclip_resumed_repeats_the_uninterrupted_run(tiny_data, tiny_teachers, tmp_path):
    run = dict(batch_size_train=4, min_lr=1e-3, num_workers=1)

    def train(out, **extra):
        options = _options(tiny_data, out, **run, **extra) + list(tiny_teachers)
        return run_lavis_tool(
            [sys.executable, str(TRAIN), "--cfg-path", str(TEACHCLIP), "--options", *options],
            tmp_path,
        )

    straight = train(tmp_path / "straight", max_epoch=2)
    train(tmp_path / "first", max_epoch=1)
    resumed = train(
        tmp_path / "resumed",
        max_epoch=2,
        resume_ckpt_path=tmp_path / "first" / "job" / "checkpoint_latest.pth",
    )
    assert (
        _train_losses(tmp_path / "resumed" / "job")
        == _train_losses(tmp_path / "straight" / "job")[1:]
    )
    final = [
        torch.load(out / "job" / "checkpoint_latest.pth", weights_only=True)["model"]
        for out in (tmp_path / "straight", tmp_path / "resumed")
    ]
    for name, weights in final[0].items():
        assert torch.allclose(weights, final[1][name], atol=1e-6), name
    assert tool_metrics(resumed) == pytest.approx(tool_metrics(straight), rel=1e-5)
