# Copyright (c) plugzoo contributors. Apache-2.0.
"""A seeded temporal benchmark: mp4 clips whose class is the direction of motion.

Classes come in reversible pairs (left/right, up/down, approaching/receding,
clockwise/anticlockwise rotation). A clip of the second class of a pair is a clip of the
first class played backwards, so both classes of a pair have exactly the same distribution
of frames: a frame-order-blind model (TSN) can at best tell the pair (ceiling 50% top-1
over the 8 classes, chance 12.5%), a temporal model can tell the direction.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from plugins.video import write_mp4

PAIRS = (
    ("moving_right", "moving_left"),
    ("moving_down", "moving_up"),
    ("approaching", "receding"),
    ("rotating_clockwise", "rotating_anticlockwise"),
)
CLASSES = tuple(name for pair in PAIRS for name in pair)


def _canvas(rng, num_frames: int, size: int) -> np.ndarray:
    tint = rng.integers(0, 50, size=3)
    frame = np.broadcast_to(tint.astype(np.uint8), (size, size, 3))
    return np.repeat(frame[None], num_frames, axis=0).copy()


def _forward_clip(pair: int, rng, num_frames: int, size: int) -> np.ndarray:
    """The first class of ``pair``: a bright object moving one way."""
    frames = _canvas(rng, num_frames, size)
    colour = rng.integers(150, 256, size=3).astype(np.uint8)
    t = np.linspace(0.0, 1.0, num_frames)
    yy, xx = np.mgrid[0:size, 0:size]
    if pair in (0, 1):  # translation: along x (pair 0) or y (pair 1)
        side = int(rng.integers(size // 6, size // 4 + 1))
        start = rng.uniform(0, size * 0.25)
        end = rng.uniform(size * 0.75 - side, size - side)
        across = rng.uniform(0, size - side)
        for i, along in enumerate(start + (end - start) * t):
            a, b = int(round(along)), int(round(across))
            y, x = (b, a) if pair == 0 else (a, b)
            frames[i, y : y + side, x : x + side] = colour
    elif pair == 2:  # a square growing about a fixed centre
        cy, cx = rng.uniform(size * 0.35, size * 0.65, size=2)
        small, large = size * rng.uniform(0.08, 0.15), size * rng.uniform(0.35, 0.45)
        for i, half in enumerate(small + (large - small) * t):
            mask = (np.abs(yy - cy) <= half) & (np.abs(xx - cx) <= half)
            frames[i][mask] = colour
    else:  # a bar turning clockwise (image coordinates: y down) about its centre
        cy, cx = rng.uniform(size * 0.4, size * 0.6, size=2)
        length, width = size * 0.35, max(size / 16, 1.5)
        angle0 = rng.uniform(0, np.pi)
        for i, angle in enumerate(angle0 + np.pi * 0.75 * t):
            dy, dx = np.sin(angle), np.cos(angle)
            along = (yy - cy) * dy + (xx - cx) * dx
            across = np.abs((yy - cy) * dx - (xx - cx) * dy)
            frames[i][(np.abs(along) <= length) & (across <= width)] = colour
    return frames


def make_clip(label: int, rng, num_frames: int = 8, size: int = 32) -> np.ndarray:
    """A ``[num_frames, size, size, 3]`` uint8 clip of class ``CLASSES[label]``."""
    if not 0 <= label < len(CLASSES):
        raise ValueError(f"label must be in [0, {len(CLASSES)}), got {label}")
    clip = _forward_clip(label // 2, rng, num_frames, size)
    return clip[::-1].copy() if label % 2 else clip


def write_motion_dataset(
    root: Path,
    clips_per_class: dict[str, int] | None = None,
    num_frames: int = 8,
    size: int = 32,
    seed: int = 0,
) -> dict:
    """Write mp4 clips and VideoDataset lists (``<split>_list_videos.txt``: ``file label``).

    Args:
        root: Output folder: ``root/videos/<split>/<class>_<i>.mp4`` and the lists.
        clips_per_class: Clips per class for each split. Defaults to
            ``{"train": 32, "val": 8, "test": 8}``.
        num_frames, size: Clip length and square frame size (even).
        seed: Everything is drawn from this seed.

    Returns:
        The dataset description also written to ``root/dataset.json``.
    """
    clips_per_class = clips_per_class or {"train": 32, "val": 8, "test": 8}
    root = Path(root)
    rng = np.random.default_rng(seed)
    description = dict(
        classes=list(CLASSES), num_frames=num_frames, size=size, seed=seed, splits={}
    )
    for split, per_class in clips_per_class.items():
        lines = []
        for i in range(per_class):
            for label, name in enumerate(CLASSES):
                relative = f"{split}/{name}_{i:04d}.mp4"
                write_mp4(root / "videos" / relative, make_clip(label, rng, num_frames, size))
                lines.append(f"{relative} {label}")
        (root / f"{split}_list_videos.txt").write_text("\n".join(lines) + "\n")
        description["splits"][split] = len(lines)
    (root / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    (root / "dataset.json").write_text(json.dumps(description, indent=2))
    return description
