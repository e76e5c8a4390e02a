"""Local image-text retrieval datasets that read LAVIS's retrieval annotation format.

Annotation files: a JSON list (LAVIS's ``coco_karpathy_*.json`` / ``flickr30k_*.json``) or
JSON lines (``.jsonl``), each record ``{"image": <path relative to the image root>,
"caption": <str or list of str>}`` with an optional ``"image_id"``. LAVIS's training files
hold one record per caption, its evaluation files one per image with a caption list;
either shape is accepted for either split (records naming the same image are merged).
A malformed record is an error naming the file and the line it starts on.

Items match LAVIS's ``RetrievalDataset`` / ``RetrievalEvalDataset``, so LAVIS's models
(ALBEF, BLIP) and the ``image_text_retrieval`` task take them unchanged: training yields
``{"image", "text_input", "image_id"}`` (``image_id``: the image's index, so captions of
one image are positives of each other), evaluation ``{"image", "index"}`` with ``text``,
``image``, ``txt2img`` and ``img2txt`` on the dataset.

Bad input (``bad_image_policy``, which covers captions too):
- Images are decoded in full with truncated data refused, whatever PIL's global
  ``ImageFile.LOAD_TRUNCATED_IMAGES`` says (``import lavis`` switches it on, so a cut-off
  PNG or JPEG would otherwise load with its missing part grey or black).
- ``raise`` (default): a missing image stops construction naming the files; an unreadable
  or truncated one stops when it is read, naming the file and PIL's error. ``skip``:
  images that are missing, unreadable or truncated are dropped when the dataset is built
  (every image is decoded once), counted in ``dataset.skipped`` and logged, so an
  evaluation gallery never changes while it is scored.
- A caption that is empty after the text processor (``"..."`` under LAVIS's
  ``blip_caption``, which drops punctuation) stops construction under ``raise``, naming
  the file, the record's line and the caption; under ``skip`` it is dropped and counted in
  ``dataset.empty_captions`` (an image left with no caption is skipped).
- A caption with more words than the text processor's ``max_words`` is truncated by the
  processor (LAVIS's ``blip_caption``); the dataset counts such captions in
  ``dataset.truncated`` and logs how many.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
from pathlib import Path

from PIL import Image, ImageFile, UnidentifiedImageError
from torch.utils.data import Dataset, default_collate

POLICIES = ("raise", "skip")
_TRUNCATION_FLAG = threading.Lock()  # one reader at a time flips PIL's global flag


class ImageReadError(RuntimeError):
    """An image that cannot be read; the message names the file."""


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def read_records(path: str | Path) -> list[tuple[int, object]]:
    """``[(line, record), ...]`` from a JSON list or a JSON-lines file; syntax errors name
    the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"annotation file not found: {path}")
    text = path.read_text(encoding="utf-8")
    decoder = json.JSONDecoder()
    records = []
    try:
        if path.suffix == ".jsonl":
            for number, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    records.append((number, json.loads(line)))
            return records
        position = len(text) - len(text.lstrip())
        if not text[position:].startswith("["):
            raise ValueError(
                f"{path}, line {_line_of(text, position)}: expected a JSON list of records "
                "(or a .jsonl file with one record a line)"
            )
        position += 1
        while True:
            while position < len(text) and text[position] in " \t\r\n,":
                position += 1
            if position < len(text) and text[position] == "]":
                return records
            start = position
            record, position = decoder.raw_decode(text, position)
            records.append((_line_of(text, start), record))
    except json.JSONDecodeError as error:
        line = error.lineno if path.suffix != ".jsonl" else number
        raise ValueError(f"{path}, line {line}: invalid JSON: {error.msg}") from error


def _captions(record: dict, where: str) -> list[str]:
    captions = record["caption"]
    captions = [captions] if isinstance(captions, str) else captions
    if not (
        isinstance(captions, list)
        and captions
        and all(isinstance(c, str) and c.strip() for c in captions)
    ):
        raise ValueError(
            f"{where}: 'caption' must be a non-empty string or a non-empty list of non-empty "
            f"strings, got {record['caption']!r}"
        )
    return captions


@contextlib.contextmanager
def _truncation_refused():
    """PIL's global ``LOAD_TRUNCATED_IMAGES`` off inside the block, restored after."""
    with _TRUNCATION_FLAG:
        previous = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            yield
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = previous


def _decode(path) -> Image.Image:
    """Every pixel of ``path`` decoded, as RGB; a truncated file raises ``OSError``."""
    with _truncation_refused(), Image.open(path) as image:
        image.load()
        return image.convert("RGB")


def _readable(path: Path) -> str | None:
    """None if PIL decodes all of ``path``, else the reason."""
    try:
        _decode(path)
    except (OSError, UnidentifiedImageError, SyntaxError) as error:
        return f"{type(error).__name__}: {error}"
    return None


def load_image_text_annotations(ann_paths, vis_root, policy: str = "raise", text_processor=None):
    """Read and check annotation files; returns ``(entries, skipped, empty_captions)``.

    Entries come back one per image, in first-appearance order: ``{"image": absolute
    path, "captions": [...], "image_id": str}``. ``skipped`` lists ``(path, reason)`` of
    images dropped under ``policy == "skip"``; ``empty_captions`` ``(file and line,
    caption)`` of the captions ``text_processor`` leaves empty, dropped under ``skip``
    (under ``raise`` the first one is an error).
    """
    if policy not in POLICIES:
        raise ValueError(f"bad_image_policy must be one of {POLICIES}, got {policy!r}")
    vis_root = Path(vis_root)
    by_image: dict[str, dict] = {}
    empty_captions: list[tuple[str, str]] = []
    for ann_path in [ann_paths] if isinstance(ann_paths, (str, Path)) else ann_paths:
        for line, record in read_records(ann_path):
            where = f"{ann_path}, line {line}"
            if not isinstance(record, dict):
                raise ValueError(f"{where}: expected an object, got {type(record).__name__}")
            absent = [key for key in ("image", "caption") if key not in record]
            if absent or not isinstance(record.get("image"), str):
                raise ValueError(
                    f"{where}: a record needs 'image' (a path relative to {vis_root}) and "
                    f"'caption' (a string or a list of strings); missing {absent}, it has "
                    f"{sorted(record)}"
                )
            captions = _captions(record, where)
            if text_processor is not None:
                kept = [c for c in captions if text_processor(c).strip()]
                for caption in (c for c in captions if c not in kept):
                    if policy == "raise":
                        raise ValueError(
                            f"{where}: caption {caption!r} is empty after the text processor "
                            f"({type(text_processor).__name__}); fix the record, or set "
                            "bad_image_policy: skip to drop and count such captions"
                        )
                    empty_captions.append((where, caption))
                captions = kept
            image = str(vis_root / record["image"])
            entry = by_image.setdefault(
                image,
                {
                    "image": image,
                    "captions": [],
                    "image_id": str(record.get("image_id", Path(record["image"]).stem)),
                },
            )
            entry["captions"].extend(captions)
    entries, skipped, missing = [], [], []
    for entry in by_image.values():
        path = Path(entry["image"])
        if not entry["captions"]:  # every caption of the image was empty
            skipped.append((str(path), "no caption left after the text processor"))
            continue
        if not path.is_file():
            missing.append(str(path))
            skipped.append((str(path), "missing"))
            continue
        if policy == "skip":
            reason = _readable(path)
            if reason is not None:
                skipped.append((str(path), reason))
                continue
        entries.append(entry)
    if missing and policy == "raise":
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise FileNotFoundError(
            f"{len(missing)} image file(s) named in the annotations do not exist: {shown} "
            "(set bad_image_policy: skip to drop such entries)"
        )
    if skipped:
        logging.warning(
            "skipped %d image(s) that are missing, unreadable, truncated or without a caption, "
            "e.g. %s",
            len(skipped),
            skipped[0],
        )
    if empty_captions:
        logging.warning(
            "dropped %d caption(s) empty after the text processor, e.g. %s",
            len(empty_captions),
            empty_captions[0],
        )
    if not entries:
        raise ValueError(f"no usable image in {ann_paths}")
    return entries, skipped, empty_captions


def _word_count(caption: str) -> int:
    # the words LAVIS's blip_caption counts (it drops these characters first)
    return len(re.sub(r"([.!\"()*#:;~])", " ", caption.lower()).split())


def count_truncated(entries: list[dict], text_processor) -> list[tuple[str, int]]:
    """``(image, caption index)`` of captions longer than the processor's ``max_words``."""
    max_words = getattr(text_processor, "max_words", None)
    if max_words is None:
        return []
    truncated = [
        (entry["image"], index)
        for entry in entries
        for index, caption in enumerate(entry["captions"])
        if _word_count(caption) > max_words
    ]
    if truncated:
        logging.warning(
            "%d caption(s) have more than max_words=%d words and are truncated, e.g. caption "
            "%d of %s",
            len(truncated),
            max_words,
            truncated[0][1],
            truncated[0][0],
        )
    return truncated


def read_image(path: str) -> Image.Image:
    """The image decoded in full as RGB (truncation refused); ``ImageReadError`` names the
    file."""
    try:
        return _decode(path)
    except (OSError, UnidentifiedImageError, SyntaxError) as error:
        raise ImageReadError(
            f"cannot read image {path}: {type(error).__name__}: {error}"
        ) from error


class _ImageTextBase(Dataset):
    def __init__(self, vis_processor, text_processor, ann_paths, vis_root, policy="raise"):
        self.vis_processor, self.text_processor = vis_processor, text_processor
        self.entries, self.skipped, self.empty_captions = load_image_text_annotations(
            ann_paths, vis_root, policy, text_processor
        )
        self.truncated = count_truncated(self.entries, text_processor)

    def collater(self, samples):
        return default_collate(samples)


class ImageTextTrainDataset(_ImageTextBase):
    """One item per (image, caption) pair; ``image_id`` is the image's index."""

    def __init__(self, vis_processor, text_processor, ann_paths, vis_root, policy="raise"):
        super().__init__(vis_processor, text_processor, ann_paths, vis_root, policy)
        self.pairs = [
            (image_index, caption)
            for image_index, entry in enumerate(self.entries)
            for caption in entry["captions"]
        ]

    def __len__(self):
        return len(self.pairs)

    def __getitem__(self, index):
        image_index, caption = self.pairs[index]
        return {
            "image": self.vis_processor(read_image(self.entries[image_index]["image"])),
            "text_input": self.text_processor(caption),
            "image_id": image_index,
            "instance_id": str(index),
        }


class ImageTextEvalDataset(_ImageTextBase):
    """One item per image; every caption in ``text`` with LAVIS's ``txt2img`` /
    ``img2txt`` maps."""

    def __init__(self, vis_processor, text_processor, ann_paths, vis_root, policy="raise"):
        super().__init__(vis_processor, text_processor, ann_paths, vis_root, policy)
        self.text, self.image, self.txt2img, self.img2txt = [], [], {}, {}
        for image_index, entry in enumerate(self.entries):
            self.image.append(entry["image"])
            self.img2txt[image_index] = []
            for caption in entry["captions"]:
                self.img2txt[image_index].append(len(self.text))
                self.txt2img[len(self.text)] = image_index
                self.text.append(text_processor(caption))

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, index):
        return {"image": self.vis_processor(read_image(self.image[index])), "index": index}


__all__ = [
    "POLICIES",
    "ImageReadError",
    "ImageTextEvalDataset",
    "ImageTextTrainDataset",
    "count_truncated",
    "load_image_text_annotations",
    "read_image",
    "read_records",
]
