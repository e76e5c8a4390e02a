"""Every shipped MMAction2 config runs: each of its train/val/test dataloaders is built by
mmengine's Runner from the config as shipped (only the data paths and worker count
changed) over tiny generated data, and one batch is drawn; the slow test runs that batch
through the config's model. A config that cannot run (e.g. keys that DataLoader rejects)
fails here."""

from __future__ import annotations

import copy
from pathlib import Path

import mmaction_ext  # noqa: F401  (registers STH, applies the host fixes)

import numpy as np
import pytest
import torch
from conftest import REPO_ROOT

from plugins.video import write_mp4

# configs/mmaction/_base_/ holds the dataset recipes the configs inherit, not configs to run:
# each is exercised through every config that inherits it
CONFIGS = sorted(
    p for p in (REPO_ROOT / "configs" / "mmaction").rglob("*.py") if "_base_" not in p.parts
)
SPLITS = ("train", "val", "test")


def _write_videos(root: Path) -> tuple[Path, Path]:
    """Two small H.264 clips and a VideoDataset list (``<file> <label>``)."""
    rng = np.random.default_rng(0)
    lines = []
    for label in range(2):
        frames = rng.integers(0, 256, size=(20, 40, 56, 3), dtype=np.uint8)
        write_mp4(root / "videos" / f"clip_{label}.mp4", frames)
        lines.append(f"clip_{label}.mp4 {label}")
    ann = root / "list_videos.txt"
    ann.write_text("\n".join(lines) + "\n")
    return ann, root / "videos"


def _write_rawframes(root: Path, filename_tmpl: str) -> tuple[Path, Path]:
    """Two folders of jpg frames and a RawframeDataset list (``<dir> <frames> <label>``)."""
    import cv2

    rng = np.random.default_rng(0)
    lines = []
    for label in range(2):
        folder = root / "rawframes" / f"clip_{label}"
        folder.mkdir(parents=True)
        for index in range(1, 21):  # RawframeDataset's frames start at 1
            frame = rng.integers(0, 256, size=(40, 56, 3), dtype=np.uint8)
            assert cv2.imwrite(str(folder / filename_tmpl.format(index)), frame)
        lines.append(f"clip_{label} 20 {label}")
    ann = root / "list_rawframes.txt"
    ann.write_text("\n".join(lines) + "\n")
    return ann, root / "rawframes"


def _dataloader_cfg(cfg, split: str, data_root: Path) -> dict:
    """The split's dataloader as shipped, pointed at generated data, in this process."""
    loader = copy.deepcopy(cfg[f"{split}_dataloader"].to_dict())
    dataset = loader["dataset"]
    if dataset["type"] == "RawframeDataset":
        ann, prefix = _write_rawframes(
            data_root / split, dataset.get("filename_tmpl", "img_{:05}.jpg")
        )
        dataset["data_prefix"] = dict(img=str(prefix))
    else:
        ann, prefix = _write_videos(data_root / split)
        dataset["data_prefix"] = dict(video=str(prefix))
    dataset["ann_file"] = str(ann)
    loader["num_workers"] = 0
    loader["persistent_workers"] = False
    return loader


def _draw_batches(path: Path, tmp_path: Path) -> tuple[object, dict]:
    from mmengine.config import Config
    from mmengine.registry import init_default_scope
    from mmengine.runner import Runner

    cfg = Config.fromfile(str(path))
    init_default_scope("mmaction")
    batches = {}
    for split in SPLITS:
        loader = Runner.build_dataloader(_dataloader_cfg(cfg, split, tmp_path / split))
        batches[split] = next(iter(loader))
    return cfg, batches


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO_ROOT / "configs")))
def test_every_split_builds_its_dataloader_and_draws_a_batch(path: Path, tmp_path: Path):
    cfg, batches = _draw_batches(path, tmp_path)
    segments = cfg.model.backbone.get("num_segments")
    for split, batch in batches.items():
        inputs = batch["inputs"]
        assert len(inputs) == len(batch["data_samples"]) >= 1, split
        for frames in inputs:
            assert frames.dtype == torch.uint8 and frames.shape[1] == 3, (split, frames.shape)
            if segments is not None:
                # views x num_segments frames: a clip of any other length mixes clips
                assert frames.shape[0] % segments == 0, (split, frames.shape, segments)
                if split == "train":
                    assert frames.shape[0] == segments


def _without_local_weights(model_cfg):
    backbone = model_cfg["backbone"]
    if backbone.get("pretrained"):
        backbone["pretrained"] = None
        if backbone["type"].endswith("TSM"):  # ResNetTSM, MobileNetV2TSM
            backbone["pretrained2d"] = False
    return model_cfg


@pytest.mark.slow
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO_ROOT / "configs")))
def test_every_config_trains_and_tests_on_its_own_batches(path: Path, tmp_path: Path):
    """One training step (loss, backward) on the train batch and a prediction on the test
    batch, through the config's own model, data preprocessor and head."""
    from mmaction.registry import MODELS

    cfg, batches = _draw_batches(path, tmp_path)
    model = MODELS.build(_without_local_weights(cfg.model.to_dict()))
    model.init_weights()
    train = {k: v[:1] for k, v in batches["train"].items()}
    losses = model(**model.data_preprocessor(train, training=True), mode="loss")
    loss = sum(v for k, v in losses.items() if "loss" in k)
    loss.backward()
    assert torch.isfinite(loss)
    model.eval()
    test = {k: v[:1] for k, v in batches["test"].items()}
    with torch.no_grad():
        (sample,) = model(**model.data_preprocessor(test, training=False), mode="predict")
    assert sample.pred_score.shape == (cfg.model.cls_head.num_classes,)
