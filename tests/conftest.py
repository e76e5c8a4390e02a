"""Shared fixtures: subprocess runs in this environment, tiny real mp4 datasets, and the
export tests' pinned host sources, formatter and runs under ``plugins/export/shim.py``."""

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
# test-only: runs a script with plugzoo's packages blocked (see its docstring)
SHIM = REPO_ROOT / "plugins" / "export" / "shim.py"
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


# ---- the export tests: pinned host sources, the pinned black, runs of an exported tree ----
def _extracted_host(package: str, tmp_path_factory) -> Path:
    """The pinned sdist of ``package`` extracted in a fresh folder; the test is skipped where
    the sdist is neither cached nor downloadable."""
    from plugins.export.sources import HostSourceUnavailable, extract_host

    try:
        return extract_host(package, tmp_path_factory.mktemp(f"{package}-src"))
    except HostSourceUnavailable as error:
        pytest.skip(f"the pinned {package} sdist cannot be obtained: {error}")


@pytest.fixture(scope="module")
def recbole_src(tmp_path_factory) -> Path:
    return _extracted_host("recbole", tmp_path_factory)


@pytest.fixture(scope="module")
def lavis_src(tmp_path_factory) -> Path:
    return _extracted_host("salesforce-lavis", tmp_path_factory)


@pytest.fixture(scope="module")
def mmaction_src(tmp_path_factory) -> Path:
    return _extracted_host("mmaction2", tmp_path_factory)


@pytest.fixture(scope="module")
def black_env() -> dict:
    """The environment that runs the host's pinned black (installed into the export cache
    once); the test is skipped where it cannot be installed."""
    from plugins.export.sources import formatter_env, install_formatter

    env = formatter_env("black")
    if env is None:
        try:
            install_formatter("black")
        except subprocess.CalledProcessError as error:
            pytest.skip(f"the pinned black cannot be installed: {error}")
        env = formatter_env("black")
    return env


def exported_env(*first: Path) -> dict:
    """This environment with only ``first`` on PYTHONPATH (the exported tree, not this
    checkout), one thread and the Hugging Face hub offline."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(PYTHONPATH=os.pathsep.join(map(str, first)), OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1")
    return env


def run_checked(command: list, cwd: Path, env: dict, timeout: int = 900):
    """Run ``command``; fails the test with the ends of its output unless it exits 0."""
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-6000:]
    return done


def run_exported(host: Path, *args, timeout: int = 900):
    """``python plugins/export/shim.py ARGS...`` in the exported tree ``host``, with ``host``
    first on the path: a script, or ``-m module ...``."""
    command = [sys.executable, str(SHIM), *map(str, args)]
    return run_checked(command, host, exported_env(host), timeout)


def run_exported_script(host: Path, name: str, script: str, *args, timeout: int = 900):
    """``script`` written to ``host/name`` after ``SHIM_CONTROL`` and run by
    :func:`run_exported` with ``args``."""
    path = host / name
    path.write_text(SHIM_CONTROL + textwrap.dedent(script))
    return run_exported(host, path, *args, timeout=timeout)
