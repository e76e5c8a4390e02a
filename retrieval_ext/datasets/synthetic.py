"""The embedded text-video dataset: seeded mp4 clips whose captions need the video.

Every fourth clip content shows one event (a coloured shape crossing the frame in one
direction) while distinct single events remain, the others two events in order (one shape
moves, then another). Captions name colours, shapes, directions and the order of events, so
a caption matches its clip only if the model reads what is in the frames, where things move,
and when. Every clip comes with its time-reversed twin in the same split (same frames,
reversed order: opposite directions, swapped events), so a frame-order-blind model
(CLIP4Clip ``meanP``) gives a clip and its twin the same vector and can at best rank the
right one first half of the time; a temporal model can tell them apart. Clips are 8 frames:
the default processors sample all of them.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from plugins.video import write_mp4

# Few objects on purpose: many clips share their objects and differ only in directions or
# order, so a training batch holds negatives that only the motion tells apart.
COLOURS = {
    "red": (230, 40, 40),
    "green": (40, 210, 60),
    "blue": (50, 90, 240),
    "yellow": (235, 225, 40),
}
SHAPES = ("square", "circle")
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
OPPOSITE = {"left": "right", "right": "left", "up": "down", "down": "up"}
PHRASES = {"left": "to the left", "right": "to the right", "up": "upwards", "down": "downwards"}


def _shape_mask(shape: str, size: int, radius: int, cx: float, cy: float) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size]
    dx, dy = xs - cx, ys - cy
    if shape == "circle":
        return dx**2 + dy**2 <= radius**2
    return (np.abs(dx) <= radius) & (np.abs(dy) <= radius)


def _draw_event(frames, event, rng, size):
    """Draw ``event`` (colour, shape, direction) moving across ``frames`` in place."""
    colour, shape, direction = event
    radius = size // 8
    margin = radius + 1
    dx, dy = DIRECTIONS[direction]
    lateral = rng.uniform(margin, size - margin)
    steps = len(frames)
    for t, frame in enumerate(frames):
        travel = margin + (size - 2 * margin) * t / max(steps - 1, 1)
        along = travel if (dx + dy) > 0 else size - travel
        cx, cy = (along, lateral) if dx else (lateral, along)
        frame[_shape_mask(shape, size, radius, cx, cy)] = COLOURS[colour]


def _caption_pair(events) -> list[str]:
    (c1, s1, d1), *rest = events
    if not rest:
        return [f"a {c1} {s1} moves {d1}", f"the {c1} {s1} is moving {PHRASES[d1]}"]
    (c2, s2, d2) = rest[0]
    return [
        f"a {c1} {s1} moves {d1}, then a {c2} {s2} moves {d2}",
        f"first the {c1} {s1} goes {PHRASES[d1]}, after that the {c2} {s2} goes {PHRASES[d2]}",
    ]


def _reverse(events):
    return [(c, s, OPPOSITE[d]) for c, s, d in reversed(events)]


def render_clip(events, rng, num_frames: int = 8, size: int = 32) -> np.ndarray:
    """``[num_frames, size, size, 3]`` uint8 frames of one or two events in order."""
    background = rng.integers(0, 40, size=(1, size, size, 3)).astype(np.uint8)
    frames = np.repeat(background, num_frames, axis=0)
    if len(events) == 1:
        _draw_event(frames, events[0], rng, size)
    else:
        half = num_frames // 2
        _draw_event(frames[:half], events[0], rng, size)
        _draw_event(frames[half:], events[1], rng, size)
    return frames


def _contents(rng, count: int):
    """``count`` distinct clip contents (a quarter one event, while distinct ones remain;
    the rest two events), none the reversal of another, so the twins stay distinct."""
    objects = list(itertools.product(COLOURS, SHAPES))
    single_capacity = len(objects) * len(DIRECTIONS) // 2  # a single event and its twin
    chosen, seen, singles = [], set(), 0
    for _ in range(100 * count + 1000):
        if len(chosen) == count:
            return chosen
        if len(chosen) % 4 == 0 and singles < single_capacity:
            colour, shape = objects[rng.integers(len(objects))]
            events = [(colour, shape, list(DIRECTIONS)[rng.integers(4)])]
        else:
            first, second = rng.choice(len(objects), size=2, replace=False)
            events = [
                (*objects[first], list(DIRECTIONS)[rng.integers(4)]),
                (*objects[second], list(DIRECTIONS)[rng.integers(4)]),
            ]
        key, twin = tuple(events), tuple(_reverse(events))
        if key in seen or twin in seen:
            continue
        seen.update({key, twin})
        singles += len(events) == 1
        chosen.append(events)
    raise ValueError(f"could not draw {count} distinct clip contents; ask for fewer clips")


def write_video_text_dataset(
    root: str | Path,
    pairs_per_split: dict[str, int] | None = None,
    seed: int = 0,
    num_frames: int = 8,
    size: int = 32,
) -> dict:
    """Write ``root/videos/<split>_<i>.mp4`` and ``root/annotations/<split>.json``.

    Args:
        root: Output folder.
        pairs_per_split: Twin pairs per split (each pair is two clips); default
            ``{"train": 160, "val": 24, "test": 24}``.
        seed: Everything (contents, positions, backgrounds) follows from it.
        num_frames, size: Clip length and frame side (even).

    Returns:
        ``{"root", "splits": {split: clips}, "captions": {split: captions}, "seed"}``.
    """
    root = Path(root)
    pairs_per_split = pairs_per_split or {"train": 160, "val": 24, "test": 24}
    rng = np.random.default_rng(seed)
    contents = _contents(rng, sum(pairs_per_split.values()))
    summary = {"root": str(root), "splits": {}, "captions": {}, "seed": seed}
    offset = 0
    for split, pairs in pairs_per_split.items():
        entries = []
        for events in contents[offset : offset + pairs]:
            frames = render_clip(events, rng, num_frames, size)
            for clip_events, clip in ((events, frames), (_reverse(events), frames[::-1])):
                name = f"{split}_{len(entries):04d}.mp4"
                write_mp4(root / "videos" / name, np.ascontiguousarray(clip))
                entries.append(
                    {"video": name, "caption": _caption_pair(clip_events), "video_id": name[:-4]}
                )
        offset += pairs
        (root / "annotations").mkdir(parents=True, exist_ok=True)
        (root / "annotations" / f"{split}.json").write_text(json.dumps(entries, indent=1))
        summary["splits"][split] = len(entries)
        summary["captions"][split] = sum(len(e["caption"]) for e in entries)
    (root / "dataset.json").write_text(json.dumps(summary, indent=1))
    return summary
