"""The fine-grained embedded text-video dataset: the caption is in only k of a clip's frames.

Each clip has one content: a coloured shape in one quadrant with an action (moving left,
right, up or down, drawn as the shape with a fading trail behind it, or growing, drawn as
the shape inside two fading larger outlines), so one frame shows all of it. The content is
drawn in ``k`` of the ``F`` frames, at positions drawn at random per clip (saved as
``content_frames`` in the annotation, 0-based); the other frames are distractors, and frame
order carries no information. Captions name the colour, the shape, the quadrant and the
action.

Distractors (``distractors``):

- ``neutral``: frames no caption describes: grey stripes, a checkerboard, pixel noise, and
  a hollow grey outline or a dim grey shape anywhere (a square or a circle, shapes the
  captions name, but grey, a colour none names, and with no action). A model that finds
  the content frames (text-agnostic frame weighting, text-conditioned pooling) can ignore
  them; mean pooling averages them in.
- ``other-captions``: other contents of the same vocabulary at full strength, each one
  another caption's. The control: no weighting that does not read the caption can tell
  which frames are the clip's own, so frame weighting cannot help.

Contents are distinct within a split. Clips are ``F`` frames; the default processors sample
all of them.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from plugins.video import write_mp4

COLOURS = {
    "red": (230, 40, 40),
    "green": (40, 210, 60),
    "blue": (50, 90, 240),
    "yellow": (235, 225, 40),
    "magenta": (220, 50, 220),
    "cyan": (40, 220, 230),
}
SHAPES = ("square", "circle")
# quadrant name -> its centre as a fraction of the frame side (x, y)
POSITIONS = {
    "top left": (0.25, 0.25),
    "top right": (0.75, 0.25),
    "bottom left": (0.25, 0.75),
    "bottom right": (0.75, 0.75),
}
ACTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1), "growing": None}
PHRASES = {
    "left": ("moves left", "is moving to the left"),
    "right": ("moves right", "is moving to the right"),
    "up": ("moves up", "is moving upwards"),
    "down": ("moves down", "is moving downwards"),
    "growing": ("grows", "is growing"),
}
DISTRACTORS = ("neutral", "other-captions")
NEUTRAL_KINDS = ("stripes", "checkerboard", "outline", "noise", "dim shape")
TRAIL = (0.5, 0.25)  # intensity of the trail copies (or growth outlines), nearest first


def contents() -> list[tuple[str, str, str, str]]:
    """Every ``(colour, shape, position, action)`` the captions can name."""
    return list(itertools.product(COLOURS, SHAPES, POSITIONS, ACTIONS))


def captions(content) -> list[str]:
    """Two captions of one content."""
    colour, shape, position, action = content
    short, long = PHRASES[action]
    return [
        f"a {colour} {shape} in the {position} {short}",
        f"the {colour} {shape} at the {position} {long}",
    ]


def _mask(shape: str, size: int, radius: float, cx: float, cy: float, hollow: bool = False):
    ys, xs = np.mgrid[0:size, 0:size]
    dx, dy = xs - cx, ys - cy
    if shape == "circle":
        inside = dx**2 + dy**2 <= radius**2
        return inside & (dx**2 + dy**2 > (radius - 1.5) ** 2) if hollow else inside
    inside = (np.abs(dx) <= radius) & (np.abs(dy) <= radius)
    return (
        inside & ((np.abs(dx) > radius - 1.5) | (np.abs(dy) > radius - 1.5)) if hollow else inside
    )


def _blend(frame: np.ndarray, mask: np.ndarray, colour, strength: float) -> None:
    frame[mask] = (1 - strength) * frame[mask] + strength * np.asarray(colour, dtype=np.float32)


def draw_content(frame: np.ndarray, content, rng) -> None:
    """Draw ``content`` into one float ``[size, size, 3]`` frame in place (jittered)."""
    colour, shape, position, action = content
    size = frame.shape[0]
    radius = size / 10
    fx, fy = POSITIONS[position]
    cx = fx * size + rng.uniform(-1.5, 1.5)
    cy = fy * size + rng.uniform(-1.5, 1.5)
    rgb = COLOURS[colour]
    if ACTIONS[action] is None:  # growing: larger fading outlines around the shape
        for step, strength in reversed(list(enumerate(TRAIL, start=1))):
            outline = _mask(shape, size, radius + 2 * step, cx, cy, hollow=True)
            _blend(frame, outline, rgb, strength)
    else:  # moving: fading copies behind the shape
        dx, dy = ACTIONS[action]
        for step, strength in reversed(list(enumerate(TRAIL, start=1))):
            behind = _mask(shape, size, radius, cx - 2.5 * step * dx, cy - 2.5 * step * dy)
            _blend(frame, behind, rgb, strength)
    _blend(frame, _mask(shape, size, radius, cx, cy), rgb, 1.0)


def draw_neutral(frame: np.ndarray, rng) -> str:
    """Draw one distractor no caption names into ``frame`` in place; returns its kind."""
    size = frame.shape[0]
    kind = NEUTRAL_KINDS[rng.integers(len(NEUTRAL_KINDS))]
    grey = float(rng.uniform(110, 200))
    ys, xs = np.mgrid[0:size, 0:size]
    if kind == "stripes":
        period = int(rng.integers(3, 7))
        lines = (xs if rng.integers(2) else ys) // period % 2 == 0
        _blend(frame, lines, (grey, grey, grey), 0.8)
    elif kind == "checkerboard":
        cell = int(rng.integers(2, 6))
        _blend(frame, (xs // cell + ys // cell) % 2 == 0, (grey, grey, grey), 0.8)
    elif kind == "noise":
        frame[:] = rng.uniform(0, 255, size=frame.shape)
    else:  # a grey outline or a dim grey shape, anywhere
        shape = SHAPES[rng.integers(len(SHAPES))]
        cx, cy = rng.uniform(size * 0.2, size * 0.8, size=2)
        hollow = kind == "outline"
        level = grey if hollow else grey * 0.35
        mask = _mask(shape, size, size / 6 if hollow else size / 10, cx, cy, hollow=hollow)
        _blend(frame, mask, (level, level, level), 1.0)
    return kind


def render_clip(
    content,
    rng,
    k: int,
    num_frames: int = 8,
    size: int = 32,
    distractors: str = "neutral",
    others=(),
) -> tuple[np.ndarray, list[int]]:
    """``([num_frames, size, size, 3] uint8 frames, content frame positions)``.

    ``others``: the contents the ``other-captions`` distractors are drawn from (each
    different from ``content``)."""
    if distractors not in DISTRACTORS:
        raise ValueError(f"distractors must be one of {DISTRACTORS}, got {distractors!r}")
    if not 1 <= k <= num_frames:
        raise ValueError(f"k (content frames) must be in 1..{num_frames}, got {k}")
    if distractors == "other-captions" and k < num_frames and not others:
        raise ValueError("other-captions distractors need the other contents (others)")
    background = rng.integers(0, 40, size=(size, size, 3)).astype(np.float32)
    frames = np.repeat(background[None], num_frames, axis=0)
    positions = sorted(int(p) for p in rng.choice(num_frames, size=k, replace=False))
    for index in range(num_frames):
        if index in positions:
            draw_content(frames[index], content, rng)
        elif distractors == "neutral":
            draw_neutral(frames[index], rng)
        else:
            draw_content(frames[index], others[rng.integers(len(others))], rng)
    return np.clip(frames, 0, 255).round().astype(np.uint8), positions


def write_finegrained_dataset(
    root: str | Path,
    clips_per_split: dict[str, int] | None = None,
    k: int = 1,
    distractors: str = "neutral",
    seed: int = 0,
    num_frames: int = 8,
    size: int = 32,
) -> dict:
    """Write ``root/videos/<split>_<i>.mp4`` and ``root/annotations/<split>.json``.

    Args:
        root: Output folder.
        clips_per_split: Clips per split, each at most the number of contents (240);
            default ``{"train": 240, "val": 48, "test": 96}``.
        k: Frames of each clip that show its content.
        distractors: ``neutral`` or ``other-captions`` (see the module docstring).
        seed: Everything (contents, positions, distractors, jitter) follows from it.
        num_frames, size: Clip length and frame side (even).

    Returns:
        ``{"root", "splits", "captions", "seed", "k", "num_frames", "distractors"}``.
    """
    root = Path(root)
    clips_per_split = clips_per_split or {"train": 240, "val": 48, "test": 96}
    vocabulary = contents()
    for split, count in clips_per_split.items():
        if count > len(vocabulary):
            raise ValueError(
                f"{split}: {count} clips asked but only {len(vocabulary)} distinct contents "
                "exist (contents are distinct within a split)"
            )
    rng = np.random.default_rng(seed)
    summary = {
        "root": str(root),
        "splits": {},
        "captions": {},
        "seed": seed,
        "k": k,
        "num_frames": num_frames,
        "distractors": distractors,
    }
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for split, count in clips_per_split.items():
        entries = []
        for number in rng.permutation(len(vocabulary))[:count]:
            content = vocabulary[number]
            others = [other for other in vocabulary if other != content]
            frames, positions = render_clip(content, rng, k, num_frames, size, distractors, others)
            name = f"{split}_{len(entries):04d}.mp4"
            write_mp4(root / "videos" / name, frames)
            entries.append(
                {
                    "video": name,
                    "caption": captions(content),
                    "video_id": name[:-4],
                    "content_frames": positions,
                }
            )
        (root / "annotations" / f"{split}.json").write_text(json.dumps(entries, indent=1))
        summary["splits"][split] = len(entries)
        summary["captions"][split] = sum(len(e["caption"]) for e in entries)
    (root / "dataset.json").write_text(json.dumps(summary, indent=1))
    return summary
