"""Shared fixtures: subprocess runs in this environment, and tiny real mp4 datasets."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# Subprocesses of the tests import this checkout too, whatever checkout the editable install
# points at (a second clone set up with tools/setup_env.sh re-points it).
os.environ["PYTHONPATH"] = os.pathsep.join(
    filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])
)
# the first lines of a script run under plugins/export/shim.py: a control that the shim is
# active there, i.e. that plugzoo's packages do not import (they do in this environment)
SHIM_CONTROL = """import importlib
for _package in ("plugins", "retrieval_ext"):
    try:
        importlib.import_module(_package)
    except ImportError:
        continue
    raise SystemExit(_package + " imports: the plugzoo-blocking shim is not active")
"""


def run_python(code: str, cwd: Path | None = None, timeout: int = 300, env: dict | None = None):
    """Run ``code`` in a fresh interpreter of this environment (no fixes applied unless the
    code applies them); returns the CompletedProcess with text stdout/stderr."""
    full_env = {**os.environ, "PYTHONWARNINGS": "ignore", **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd or REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )


def load_tool(name: str):
    """The script ``tools/**/<name>.py`` imported as a module (the tools are scripts, not a
    package)."""
    (path,) = (REPO_ROOT / "tools").rglob(f"{name}.py")
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_tiny_video_dataset(root: Path, clips_per_class: int = 4, num_frames: int = 8) -> Path:
    """Two classes of real H.264 clips (a square moving right, or left) and VideoDataset lists.

    Layout: ``root/videos/<class>_<i>.mp4``, ``root/train_list_videos.txt`` and
    ``root/val_list_videos.txt`` with lines ``<file> <label>``.
    """
    from plugins.video import moving_square_clip, write_mp4

    lines = []
    for label, direction in enumerate(("right", "left")):
        for i in range(clips_per_class):
            frames = moving_square_clip(num_frames=num_frames, size=32, seed=i)
            if direction == "left":
                frames = frames[:, :, ::-1].copy()
            name = f"{direction}_{i}.mp4"
            write_mp4(root / "videos" / name, frames)
            lines.append(f"{name} {label}")
    (root / "train_list_videos.txt").write_text("\n".join(lines) + "\n")
    (root / "val_list_videos.txt").write_text(
        "\n".join(lines[:: max(clips_per_class // 2, 1)]) + "\n"
    )
    return root


@pytest.fixture
def tiny_videos(tmp_path) -> Path:
    return write_tiny_video_dataset(tmp_path / "tiny_mp4")


def mmaction_data_options(root: Path) -> list[str]:
    """``--cfg-options`` pointing configs/mmaction/tsm_r18_tiny-mp4.py at ``root``."""
    videos = root / "videos"
    return [
        f"train_dataloader.dataset.ann_file={root / 'train_list_videos.txt'}",
        f"train_dataloader.dataset.data_prefix.video={videos}",
        f"val_dataloader.dataset.ann_file={root / 'val_list_videos.txt'}",
        f"val_dataloader.dataset.data_prefix.video={videos}",
        f"test_dataloader.dataset.ann_file={root / 'val_list_videos.txt'}",
        f"test_dataloader.dataset.data_prefix.video={videos}",
    ]
