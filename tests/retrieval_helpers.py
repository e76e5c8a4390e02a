"""Shared by the retrieval tests: a tiny CLIP4Clip config and a tiny embedded dataset."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

TINY_CLIP = {
    "embed_dim": 64,
    "quick_gelu": False,
    "vision_cfg": {"layers": 1, "width": 64, "patch_size": 8, "image_size": 32},
    "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def tiny_model_cfg(model_type: str = "meanP", **overrides):
    return OmegaConf.create(
        {
            "arch": "clip4clip_retrieval",
            "model_type": model_type,
            "clip_config": TINY_CLIP,
            "max_txt_len": 16,
            "max_frames": 8,
            "temporal_layers": 1,
            **overrides,
        }
    )


def write_tiny_embedded(root: Path, train: int = 6, val: int = 3, test: int = 3) -> Path:
    from retrieval_ext.datasets.synthetic import write_video_text_dataset

    write_video_text_dataset(root, {"train": train, "val": val, "test": test}, seed=1)
    return root
