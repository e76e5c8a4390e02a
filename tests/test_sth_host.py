"""STH inside MMAction2: Recognizer2D + TSMHead/TSNHead, TSMOptimWrapperConstructor,
checkpoint save and resume, mmengine complexity analysis, MMAction2's own entry points
(mim train, tools/train.py, tools/test.py) and 2-process torchrun DDP on CPU."""

import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO_ROOT, mmaction_data_options
from test_mmaction_host import _options_dict, _run, _train_script, _train_with

pytestmark = pytest.mark.slow

STH_CONFIG = REPO_ROOT / "configs" / "mmaction" / "sth" / "sth_r18_tiny-mp4.py"
TSM_CONFIG = REPO_ROOT / "configs" / "mmaction" / "tsm_r18_tiny-mp4.py"

TSN_HEAD = dict(
    _delete_=True,
    type="TSNHead",
    num_classes=2,
    in_channels=512,
    spatial_type="avg",
    consensus=dict(type="AvgConsensus", dim=1),
    dropout_ratio=0.4,
    init_std=0.01,
    average_clips="prob",
)


def _config(tiny_videos, work_dir, **changes):
    from mmengine.config import Config

    cfg = Config.fromfile(str(STH_CONFIG))
    cfg.merge_from_dict(_options_dict(mmaction_data_options(tiny_videos)))
    cfg.merge_from_dict(changes)
    cfg.work_dir = str(work_dir)
    return cfg


@pytest.mark.parametrize("head", ["TSMHead", "TSNHead"])
def test_runner_trains_sth_with_tsm_optimiser_then_resumes(head, tiny_videos, tmp_path):
    from mmaction_ext.models import STHConv

    from mmengine.runner import Runner

    changes = {} if head == "TSMHead" else {"model.cls_head": TSN_HEAD}
    runner = Runner.from_cfg(_config(tiny_videos, tmp_path / "work", **changes))
    assert type(runner.model.cls_head).__name__ == head
    assert (
        sum(isinstance(m, STHConv) for m in runner.model.modules()) == 16
    )  # ResNet-18: conv1 and conv2 of 8 BasicBlocks
    runner.train()
    assert (tmp_path / "work" / "iter_2.pth").is_file()
    # TSMOptimWrapperConstructor accepted STH's parameters and put each in one group
    groups = runner.optim_wrapper.optimizer.param_groups
    grouped = sum(len(g["params"]) for g in groups)
    assert grouped == len(list(runner.model.parameters()))

    cfg = _config(tiny_videos, tmp_path / "work", **changes)
    cfg.train_cfg.max_iters = 4
    cfg.resume = True
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    log = (Path(resumed.log_dir) / f"{resumed.timestamp}.log").read_text()
    assert "resumed epoch: 0, iter: 2" in log and resumed.iter == 4
    saved = torch.load(tmp_path / "work" / "iter_2.pth", weights_only=False)["state_dict"]
    assert any(".conv2.conv.temporal.weight" in key for key in saved)


def test_complexity_analysis_counts_the_formula(tiny_videos):
    from mmaction_ext.demo import model_flops
    from mmaction_ext.models import STHConv

    from mmengine.config import Config

    sth_cfg = _config(tiny_videos, "/tmp/unused")
    tsm_cfg = Config.fromfile(str(TSM_CONFIG))
    size, T = 32, sth_cfg.num_segments
    sth_flops, sth_params = model_flops(sth_cfg, T, size)
    tsm_flops, tsm_params = model_flops(tsm_cfg, T, size)

    # expected saving: each STH conv spends k_t instead of k*k multiply-adds on a
    # fraction r of its (out, in) pairs, at every output position of every frame
    from mmaction.registry import MODELS

    backbone = MODELS.build(sth_cfg.model.backbone)
    outputs = {}
    hooks = [
        m.register_forward_hook(lambda m, i, o: outputs.__setitem__(m, o.shape))
        for m in backbone.modules()
        if isinstance(m, STHConv)
    ]
    backbone(torch.randn(T, 3, size, size))
    for hook in hooks:
        hook.remove()
    saved = sum(
        m.in_channels * m.out_channels * (9 - 3) * m.temporal_ratio * shape[0] * shape[2] * shape[3]
        for m, shape in outputs.items()
    )
    assert (tsm_flops - sth_flops) * 1e9 == pytest.approx(saved, rel=1e-6)
    saved_params = sum(m.in_channels * m.out_channels * 6 * m.temporal_ratio for m in outputs)
    assert (tsm_params - sth_params) * 1e6 == pytest.approx(saved_params)


@pytest.mark.parametrize("entry", ["mim", "tools/train.py"])
def test_mmaction_entry_points_train_sth_and_tools_test_evaluates(entry, tiny_videos, tmp_path):
    work, _ = _train_with(entry, tiny_videos, tmp_path, config=STH_CONFIG)
    test_script = _train_script().with_name("test.py")
    result = _run(
        [
            sys.executable,
            str(test_script),
            str(STH_CONFIG),
            str(work / "iter_2.pth"),
            "--work-dir",
            str(tmp_path / "test_work"),
            "--cfg-options",
            *mmaction_data_options(tiny_videos),
        ],
        cwd=tmp_path,
    )
    logs = "\n".join(p.read_text() for p in (tmp_path / "test_work").glob("*/*.log"))
    assert "acc/top1" in logs, result.stdout[-2000:]


def test_torchrun_two_process_gloo_ddp_trains_sth(tiny_videos, tmp_path):
    work, result = _train_with(
        "torchrun", tiny_videos, tmp_path, "--launcher", "pytorch", config=STH_CONFIG
    )
    logs = "\n".join(p.read_text() for p in work.glob("*/*.log"))
    assert "GPU number: 2" in logs and "Iter(train) [2/2]" in logs, result.stdout[-2000:]
