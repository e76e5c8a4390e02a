"""Every shipped STH/TSM/TSN config parses through MMAction2's Config and builds its model;
the recipes keep MMAction2's data settings (flip label maps) for apples-to-apples runs."""

from pathlib import Path

import pytest
from conftest import REPO_ROOT

CONFIG_ROOT = REPO_ROOT / "configs" / "mmaction"
CONFIGS = sorted(
    p
    for folder in ("sth", "baselines", "motion")
    for p in (CONFIG_ROOT / folder).glob("*.py")
    if not p.name.endswith("_base.py")
)


def _no_weights(cfg):
    """Drop local checkpoint paths (not on this machine) before building."""
    backbone = cfg.model.backbone
    if backbone.get("pretrained"):
        backbone.pretrained = None
        if backbone.type == "ResNetTSM":
            backbone.pretrained2d = False
    return cfg


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parses_and_builds(path: Path):
    from mmaction.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    cfg = Config.fromfile(str(path))
    assert "mmaction_ext" in cfg.custom_imports["imports"]
    init_default_scope("mmaction")
    model = MODELS.build(_no_weights(cfg).model)
    assert model.cls_head.num_classes in (2, 8, 27, 51, 174)


def test_sth_recipes_keep_mmactions_flip_label_maps():
    from mmengine.config import Config

    def flip_map(name):
        cfg = Config.fromfile(str(CONFIG_ROOT / "sth" / name))
        flips = [t for t in cfg.train_pipeline if t["type"] == "Flip"]
        return flips[0].get("flip_label_map") if flips else None

    assert flip_map("sth_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py") == {
        86: 87,
        87: 86,
        93: 94,
        94: 93,
        166: 167,
        167: 166,
    }
    assert flip_map("sth_imagenet-pretrained-r50_8xb8-1x1x8-50e_sthv1-rgb.py") == {
        2: 4,
        4: 2,
        30: 41,
        41: 30,
        52: 66,
        66: 52,
    }
    assert flip_map("sth_imagenet-pretrained-r50_8xb16-1x1x8-50e_jester-rgb.py") is None


def test_16_frame_config_sets_segments_everywhere():
    from mmengine.config import Config

    cfg = Config.fromfile(
        str(CONFIG_ROOT / "sth" / "sth_imagenet-pretrained-r50_8xb16-1x1x16-50e_sthv2-rgb.py")
    )
    assert cfg.model.backbone.num_segments == 16 == cfg.model.cls_head.num_segments
    sample = next(t for t in cfg.train_pipeline if t["type"] == "SampleFrames")
    assert sample["num_clips"] == 16


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_sampled_frames_match_the_models_num_segments(path: Path):
    """STH's temporal taps (and TSM's shifts) assume num_segments frames per clip: a
    pipeline sampling another number would silently mix clips, so every config must agree."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(path))
    segments = cfg.model.backbone.get("num_segments")
    if segments is None:  # TSN: frame-order-blind, no temporal taps
        return
    for split in ("train", "val", "test"):
        pipeline = cfg[f"{split}_dataloader"]["dataset"]["pipeline"]
        sample = next(t for t in pipeline if t["type"] == "SampleFrames")
        assert sample["num_clips"] * sample["clip_len"] == segments, (split, sample)
        if "num_segments" in cfg.model.cls_head:
            assert cfg.model.cls_head.num_segments == segments
