"""The embedded image-text dataset: seeded rendered scenes whose captions hinge on phrases.

Each image (PIL-rendered PNG) holds two or three objects, one per quadrant. An object has
a kind with a two-word name, a two-word colour, a size and a two-word position. The
names are chosen so that single words mislead: "fire truck" / "fire hydrant", "traffic
light" / "traffic cone" / "light bulb", "water tower" / "water bottle", "paper plane" /
"paper cup", and "light" is also a shade ("light blue traffic light"). A caption matches
its image only if its phrases are read as units: exactly what BagFormer's entity bags
are for. Every image has three captions (all objects with sizes and positions; colours
and names only; one object with its position), so evaluation has several captions per
image, as COCO and Flickr30k. ``entities.txt`` lists every multi-word phrase, one a line:
the entity dictionary that describes the data.

Files follow LAVIS's retrieval annotation format, so LAVIS's own ``coco_retrieval``
datasets read them as well as ours: ``annotations/train.json`` holds one entry per
caption ``{"image", "caption", "image_id"}``; ``val.json`` / ``test.json`` one entry per
image ``{"image", "caption": [...], "image_id"}``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

# kind -> how it is drawn (see _draw_object)
OBJECTS = {
    "fire truck": "wide_box",
    "fire hydrant": "tall_box",
    "traffic light": "three_dots",
    "traffic cone": "triangle_up",
    "light bulb": "disk",
    "water tower": "ring",
    "water bottle": "diamond",
    "paper plane": "triangle_right",
    "paper cup": "triangle_down",
}
COLOURS = {
    "dark red": (150, 20, 20),
    "light red": (250, 130, 130),
    "dark green": (20, 110, 30),
    "light green": (140, 240, 140),
    "dark blue": (20, 30, 150),
    "light blue": (130, 170, 250),
}
SIZES = {"small": 0.28, "large": 0.42}  # half-extent as a fraction of the quadrant side
POSITIONS = ("top left", "top right", "bottom left", "bottom right")


def entity_phrases() -> list[str]:
    """Every multi-word phrase the captions use, in a stable order."""
    return [*OBJECTS, *COLOURS, *POSITIONS]


def _draw_object(draw: ImageDraw.ImageDraw, kind: str, colour, cx: float, cy: float, r: float):
    """Draw one object centred at (cx, cy) with half-extent r."""
    shape = OBJECTS[kind]
    if shape == "wide_box":
        draw.rectangle([cx - r, cy - r / 2, cx + r, cy + r / 2], fill=colour)
    elif shape == "tall_box":
        draw.rectangle([cx - r / 2, cy - r, cx + r / 2, cy + r], fill=colour)
    elif shape == "three_dots":
        dot = r / 3
        for dy in (-2 * dot, 0, 2 * dot):
            draw.ellipse([cx - dot, cy + dy - dot, cx + dot, cy + dy + dot], fill=colour)
    elif shape == "triangle_up":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=colour)
    elif shape == "triangle_down":
        draw.polygon([(cx - r, cy - r), (cx + r, cy - r), (cx, cy + r)], fill=colour)
    elif shape == "triangle_right":
        draw.polygon([(cx - r, cy - r), (cx - r, cy + r), (cx + r, cy)], fill=colour)
    elif shape == "disk":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=colour)
    elif shape == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], outline=colour, width=max(2, int(r / 3)))
    elif shape == "diamond":
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=colour)
    else:  # pragma: no cover - OBJECTS and this function change together
        raise KeyError(shape)


def render_scene(objects: list[dict], rng: np.random.Generator, size: int = 48) -> Image.Image:
    """An RGB image of ``objects`` (dicts with kind, colour, size, position) on a noisy
    grey background; each object jitters inside its quadrant."""
    background = rng.integers(200, 236, size=(size, size, 3), dtype=np.uint8)
    image = Image.fromarray(background, "RGB")
    draw = ImageDraw.Draw(image)
    half = size / 2
    for obj in objects:
        row, column = POSITIONS.index(obj["position"]) // 2, POSITIONS.index(obj["position"]) % 2
        r = SIZES[obj["size"]] * half
        slack = max(half / 2 - r, 0.0)
        cx = column * half + half / 2 + rng.uniform(-slack, slack)
        cy = row * half + half / 2 + rng.uniform(-slack, slack)
        _draw_object(draw, obj["kind"], COLOURS[obj["colour"]], cx, cy, r)
    return image


def _phrase(obj: dict, with_size: bool = True) -> str:
    size = f"{obj['size']} " if with_size else ""
    return f"a {size}{obj['colour']} {obj['kind']}"


def captions_for(objects: list[dict], rng: np.random.Generator) -> list[str]:
    """Three captions: every object with size and position; colours and names only, in
    another order; one object with its position."""
    order = rng.permutation(len(objects))
    full = " and ".join(f"{_phrase(objects[i])} at the {objects[i]['position']}" for i in order)
    shuffled = [objects[i] for i in rng.permutation(len(objects))]
    names = " next to ".join(_phrase(obj, with_size=False) for obj in shuffled)
    one = objects[int(rng.integers(len(objects)))]
    single = f"there is {_phrase(one)} at the {one['position']}"
    return [full, names, single]


def _scene(rng: np.random.Generator) -> list[dict]:
    count = int(rng.integers(2, 4))
    positions = rng.choice(len(POSITIONS), size=count, replace=False)
    kinds = rng.choice(len(OBJECTS), size=count, replace=False)
    return [
        {
            "kind": list(OBJECTS)[kinds[i]],
            "colour": list(COLOURS)[int(rng.integers(len(COLOURS)))],
            "size": list(SIZES)[int(rng.integers(len(SIZES)))],
            "position": POSITIONS[positions[i]],
        }
        for i in sorted(range(count), key=lambda i: positions[i])
    ]


def write_image_text_dataset(
    root: str | Path,
    images_per_split: dict[str, int] | None = None,
    seed: int = 0,
    size: int = 48,
) -> dict:
    """Write ``root/images/<split>_<i>.png``, ``root/annotations/<split>.json`` (LAVIS's
    retrieval format), ``root/entities.txt`` and ``root/dataset.json``.

    Args:
        root: Output folder.
        images_per_split: Images per split; default ``{"train": 480, "val": 60, "test": 100}``.
        seed: Everything (scenes, jitter, backgrounds, caption orders) follows from it.
        size: Image side in pixels.

    Returns:
        ``{"root", "splits": {split: images}, "captions": {split: captions}, "seed",
        "entities"}``.
    """
    root = Path(root)
    images_per_split = images_per_split or {"train": 480, "val": 60, "test": 100}
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    summary = {"root": str(root), "splits": {}, "captions": {}, "seed": seed}
    for split, count in images_per_split.items():
        entries = []
        while len(entries) < count:
            objects = _scene(rng)
            key = json.dumps(objects, sort_keys=True)
            if key in seen:  # every scene is unique across splits
                continue
            seen.add(key)
            name = f"{split}_{len(entries):04d}.png"
            # PNG without a timestamp: the same seed writes the same bytes
            render_scene(objects, rng, size).save(root / "images" / name, optimize=False)
            entries.append(
                {"image": name, "caption": captions_for(objects, rng), "image_id": name[:-4]}
            )
        if split == "train":  # LAVIS's training format: one entry per caption
            entries = [{**e, "caption": c} for e in entries for c in e["caption"]]
        (root / "annotations" / f"{split}.json").write_text(json.dumps(entries, indent=1))
        summary["splits"][split] = count
        summary["captions"][split] = sum(
            1 if isinstance(e["caption"], str) else len(e["caption"]) for e in entries
        )
    entities = root / "entities.txt"
    entities.write_text("\n".join(entity_phrases()) + "\n")
    summary["entities"] = str(entities)
    (root / "dataset.json").write_text(json.dumps(summary, indent=1))
    return summary
