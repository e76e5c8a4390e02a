# Copyright (c) plugzoo contributors. Apache-2.0.
"""A seeded temporal benchmark: mp4 clips whose class is the direction of motion.

Classes come in reversible pairs (left/right, up/down, approaching/receding,
clockwise/anticlockwise rotation). A clip of the second class of a pair is a clip of the
first class played backwards, so both classes of a pair have exactly the same distribution
of frames: a frame-order-blind model (TSN) can at best tell the pair (ceiling 50% top-1),
a temporal model can tell the direction.

Two levels. ``'quick'`` (8 classes, one object on a flat background) is the demo's and
the tests'; temporal models reach 100% on it. ``'hard'`` (14 classes) mixes direction
with speed (slow and fast translations are different classes) and the order of two
events (a square, then a bar, or the bar first), on a textured background with a smaller
distractor object moving at random and per-pixel noise; motion starts at a random phase.
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

HARD_PAIRS = (
    ("right_slow", "left_slow"),
    ("right_fast", "left_fast"),
    ("down_slow", "up_slow"),
    ("down_fast", "up_fast"),
    ("approaching", "receding"),
    ("rotating_clockwise", "rotating_anticlockwise"),
    ("square_then_bar", "bar_then_square"),
)
LEVELS = {
    "quick": tuple(name for pair in PAIRS for name in pair),
    "hard": tuple(name for pair in HARD_PAIRS for name in pair),
}


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


def _textured_canvas(rng, num_frames: int, size: int) -> np.ndarray:
    """A static, smooth random texture (upsampled 4x4 noise), dark enough for the objects."""
    coarse = rng.uniform(0, 70, size=(4, 4, 3))
    texture = np.kron(coarse, np.ones((size // 4 + 1, size // 4 + 1, 1)))[:size, :size]
    return np.repeat(texture[None], num_frames, axis=0)


def _square(frame, y: float, x: float, side: int, colour) -> None:
    a, b = int(round(y)), int(round(x))
    frame[max(a, 0) : a + side, max(b, 0) : b + side] = colour


def _hard_forward_clip(pair: int, rng, num_frames: int, size: int) -> np.ndarray:
    """The first class of hard ``pair``, with its nuisances, as float frames."""
    frames = _textured_canvas(rng, num_frames, size)
    colour = rng.integers(150, 256, size=3)
    # the motion runs over a random sub-interval of the clip (random phase), at least half
    length = rng.uniform(0.5, 1.0)
    begin = rng.uniform(0, 1 - length)
    t = np.clip((np.linspace(0, 1, num_frames) - begin) / length, 0, 1)
    if pair < 4:  # translations: along x (pairs 0, 1) or y (2, 3); slow or fast
        side = int(rng.integers(5, 8))
        travel = (size - side) * (rng.uniform(0.2, 0.3) if pair % 2 == 0 else rng.uniform(0.6, 0.8))
        start = rng.uniform(0, size - side - travel)
        across = rng.uniform(0, size - side)
        for i, along in enumerate(start + travel * t):
            y, x = (across, along) if pair < 2 else (along, across)
            _square(frames[i], y, x, side, colour)
    elif pair in (4, 5):  # approaching / rotating, as the quick level's, on this canvas
        clip = _forward_clip(2 if pair == 4 else 3, rng, num_frames, size).astype(np.float64)
        moving = np.any(clip != clip[:, :1, :1], axis=-1)  # the object's pixels
        frames[moving] = clip[moving]
    else:  # two events in order: a square shows, then (after it) a bar shows
        cut = int(rng.integers(2, num_frames - 1))  # square in [s0, cut), bar in [cut, b1)
        s0, b1 = int(rng.integers(0, cut - 1)), int(rng.integers(cut + 1, num_frames + 1))
        side = int(rng.integers(6, 9))
        sy, sx = rng.uniform(0, size - side, size=2)
        by, bx = rng.uniform(0, size - 10, size=2)
        vertical = rng.random() < 0.5
        for i in range(s0, cut):
            _square(frames[i], sy, sx, side, colour)
        for i in range(cut, b1):
            a, b = int(by), int(bx)
            if vertical:
                frames[i, a : a + 10, b : b + 3] = colour
            else:
                frames[i, a : a + 3, b : b + 10] = colour
    # distractor: a smaller square crossing at a random velocity, all clip long
    side = int(rng.integers(3, 5))
    p0 = rng.uniform(0, size - side, size=2)
    p1 = rng.uniform(0, size - side, size=2)
    tint = rng.integers(120, 256, size=3)
    for i, f in enumerate(np.linspace(0, 1, num_frames)):
        _square(frames[i], *(p0 + (p1 - p0) * f), side, tint)
    return frames


def make_clip(
    label: int, rng, num_frames: int = 8, size: int = 32, level: str = "quick"
) -> np.ndarray:
    """A ``[num_frames, size, size, 3]`` uint8 clip of class ``LEVELS[level][label]``."""
    classes = _classes(level)
    if not 0 <= label < len(classes):
        raise ValueError(f"label must be in [0, {len(classes)}), got {label}")
    if level == "quick":
        clip = _forward_clip(label // 2, rng, num_frames, size)
        return clip[::-1].copy() if label % 2 else clip
    clip = _hard_forward_clip(label // 2, rng, num_frames, size)
    clip = clip + rng.normal(0, 12, size=clip.shape)  # noise differs frame to frame
    clip = np.clip(np.rint(clip), 0, 255).astype(np.uint8)
    return clip[::-1].copy() if label % 2 else clip


def _classes(level: str) -> tuple[str, ...]:
    if level not in LEVELS:
        raise ValueError(f"level must be one of {sorted(LEVELS)}, got {level!r}")
    return LEVELS[level]


def write_motion_dataset(
    root: Path,
    clips_per_class: dict[str, int] | None = None,
    num_frames: int = 8,
    size: int = 32,
    seed: int = 0,
    level: str = "quick",
) -> dict:
    """Write mp4 clips and VideoDataset lists (``<split>_list_videos.txt``: ``file label``).

    Args:
        root: Output folder: ``root/videos/<split>/<class>_<i>.mp4`` and the lists.
        clips_per_class: Clips per class for each split. Defaults to
            ``{"train": 32, "val": 8, "test": 8}``.
        num_frames, size: Clip length and square frame size (even).
        seed: Everything is drawn from this seed.
        level: ``'quick'`` (8 classes) or ``'hard'`` (14; see the module docstring).

    Returns:
        The dataset description also written to ``root/dataset.json``.
    """
    clips_per_class = clips_per_class or {"train": 32, "val": 8, "test": 8}
    root = Path(root)
    classes = _classes(level)
    rng = np.random.default_rng(seed)
    description = dict(
        level=level, classes=list(classes), num_frames=num_frames, size=size, seed=seed, splits={}
    )
    for split, per_class in clips_per_class.items():
        lines = []
        for i in range(per_class):
            for label, name in enumerate(classes):
                relative = f"{split}/{name}_{i:04d}.mp4"
                clip = make_clip(label, rng, num_frames, size, level)
                write_mp4(root / "videos" / relative, clip)
                lines.append(f"{relative} {label}")
        (root / f"{split}_list_videos.txt").write_text("\n".join(lines) + "\n")
        description["splits"][split] = len(lines)
    (root / "classes.txt").write_text("\n".join(classes) + "\n")
    (root / "dataset.json").write_text(json.dumps(description, indent=2))
    return description
