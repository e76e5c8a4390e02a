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


def write_tiny_finegrained(root: Path, train: int = 6, val: int = 3, test: int = 3) -> Path:
    from retrieval_ext.datasets.finegrained import write_finegrained_dataset

    write_finegrained_dataset(root, {"train": train, "val": val, "test": test}, k=1, seed=1)
    return root


def run_lavis_tool(cmd, cwd, timeout: int = 900):
    """Run a LAVIS tool (``tools/lavis_train.py`` ...) offline on the CPU, one thread a
    process (two processes of two threads on two cores thrash); fails with its output."""
    import os
    import subprocess

    env = {
        **os.environ,
        "PYTHONWARNINGS": "ignore",
        "CUDA_VISIBLE_DEVICES": "",
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def tool_metrics(result) -> dict:
    """The test split's metrics a LAVIS tool printed as its last line."""
    import json

    return json.loads(result.stdout.strip().splitlines()[-1])["test"]["test"]


def image_text_options(data: Path, out: Path, extra=(), **run) -> list[str]:
    """``--options`` running an embedded image-text config on a tiny dataset at ``data``."""
    ann = data / "annotations"
    prefix = "datasets.embedded_image_text.build_info"
    options = [
        f"{prefix}.annotations.train.storage={ann / 'train.json'}",
        f"{prefix}.annotations.val.storage={ann / 'val.json'}",
        f"{prefix}.annotations.test.storage={ann / 'test.json'}",
        f"{prefix}.images.storage={data / 'images'}",
        f"run.output_dir={out}",
        "run.job_id=job",
        "run.warmup_steps=2",
        "run.k_test=4",
        "model.vit_depth=1",
        *extra,
    ]
    return options + [f"run.{key}={value}" for key, value in run.items()]
