"""Converters from official image-text annotation files to LAVIS's retrieval format.

Output (what :mod:`retrieval_ext.datasets.image_text` and LAVIS's own retrieval datasets
read): ``train.json`` with one record per caption ``{"image", "caption", "image_id"}``,
``val.json`` / ``test.json`` with one record per image ``{"image", "caption": [...],
"image_id"}``.

- COCO and Flickr30k, Karpathy split: ``dataset_coco.json`` / ``dataset_flickr30k.json``
  (``{"images": [{"filepath"?, "filename", "split", "sentences": [{"raw"}], "cocoid" or
  "imgid"}]}``); ``restval`` joins train, as in ALBEF and LAVIS.
- MUGE (e-commerce text-to-image, Chinese): per split ``<split>_imgs.tsv`` (lines
  ``<image id>\\t<base64 image>``) and ``<split>_queries.jsonl`` (lines ``{"query_id",
  "query_text", "item_ids"}``; the Chinese-CLIP release's ``<split>_texts.jsonl`` with
  ``{"text_id", "text", "image_ids"}`` is read too). Images are decoded and written as
  files; splits ``train``, ``valid``, ``test`` (the official test queries carry no answers
  and give no annotation file). A query with several answers becomes one caption of each
  answer image, so each (query, image) pair counts once in text-to-image recall.

A malformed record stops the conversion naming the file and its line.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from collections import defaultdict
from pathlib import Path

from PIL import Image, UnidentifiedImageError

KARPATHY_SPLITS = {"train": "train", "restval": "train", "val": "val", "test": "test"}
MUGE_SPLITS = ("train", "valid", "test")


def _need(path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def _write(out_dir: Path, name: str, records: list[dict]) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.json").write_text(json.dumps(records, ensure_ascii=False, indent=1))


def _eval_records(per_image: dict[str, dict]) -> list[dict]:
    return [
        {"image": item["image"], "caption": item["captions"], "image_id": image_id}
        for image_id, item in per_image.items()
    ]


def _train_records(per_image: dict[str, dict]) -> list[dict]:
    return [
        {"image": item["image"], "caption": caption, "image_id": image_id}
        for image_id, item in per_image.items()
        for caption in item["captions"]
    ]


def convert_karpathy(dataset_json, out_dir) -> dict:
    """Karpathy's ``dataset_coco.json`` or ``dataset_flickr30k.json`` to ``train.json``,
    ``val.json``, ``test.json``; returns ``{split: (images, captions)}``. Image paths are
    ``<filepath>/<filename>`` (COCO: ``val2014/COCO_val2014_...jpg``) or ``<filename>``."""
    path = _need(dataset_json, "Karpathy split file")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}, line {error.lineno}: invalid JSON: {error.msg}") from error
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{path}: expected an object with an 'images' list (Karpathy's format)")
    splits: dict[str, dict[str, dict]] = {"train": {}, "val": {}, "test": {}}
    for index, image in enumerate(data["images"]):
        where = f"{path}, images[{index}]"
        absent = [key for key in ("filename", "split", "sentences") if key not in image]
        if absent:
            raise KeyError(f"{where}: missing {absent}; it has {sorted(image)}")
        if image["split"] not in KARPATHY_SPLITS:
            raise ValueError(
                f"{where}: split {image['split']!r} is not one of {sorted(KARPATHY_SPLITS)}"
            )
        captions = [s.get("raw", "").strip() for s in image["sentences"]]
        if not captions or not all(captions):
            raise ValueError(f"{where}: every sentence needs a non-empty 'raw' caption")
        name = image["filename"]
        relative = f"{image['filepath']}/{name}" if image.get("filepath") else name
        image_id = str(image.get("cocoid", image.get("imgid", Path(name).stem)))
        split = KARPATHY_SPLITS[image["split"]]
        splits[split][image_id] = {"image": relative, "captions": captions}
    _write(Path(out_dir), "train", _train_records(splits["train"]))
    for split in ("val", "test"):
        _write(Path(out_dir), split, _eval_records(splits[split]))
    return {
        split: (len(items), sum(len(i["captions"]) for i in items.values()))
        for split, items in splits.items()
    }


def _muge_queries(path: Path) -> list[tuple[str, list[str]]]:
    queries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: invalid JSON: {error.msg}") from error
        text = record.get("query_text", record.get("text")) if isinstance(record, dict) else None
        items = (
            record.get("item_ids", record.get("image_ids")) if isinstance(record, dict) else None
        )
        if not isinstance(text, str) or not text.strip() or not isinstance(items, list):
            raise ValueError(
                f"{where}: expected {{'query_id', 'query_text': str, 'item_ids': [...]}} (or "
                f"Chinese-CLIP's 'text' / 'image_ids'), got {line[:200]!r}"
            )
        queries.append((text.strip(), [str(item) for item in items]))
    return queries


def _muge_images(path: Path, out_dir: Path, split: str) -> dict[str, str]:
    """Decode ``<id>\\t<base64>`` lines to ``out_dir/<split>/<id>.<format>``; returns
    ``{id: relative path}``."""
    written = {}
    (out_dir / split).mkdir(parents=True, exist_ok=True)
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path}, line {number}"
            image_id, tab, encoded = line.rstrip("\n").partition("\t")
            if not tab or not image_id.strip() or not encoded.strip():
                raise ValueError(f"{where}: expected '<image id>\\t<base64 image>'")
            try:
                raw = base64.b64decode(encoded.strip(), validate=False)
                with Image.open(io.BytesIO(raw)) as image:
                    image.verify()
                    suffix = (image.format or "jpg").lower().replace("jpeg", "jpg")
            except (binascii.Error, OSError, UnidentifiedImageError, SyntaxError) as error:
                raise ValueError(
                    f"{where}: image {image_id!r} is not a readable base64 image: {error}"
                ) from error
            relative = f"{split}/{image_id.strip()}.{suffix}"
            (out_dir / relative).write_bytes(raw)
            written[image_id.strip()] = relative
    return written


def convert_muge(muge_dir, out_dir) -> dict:
    """MUGE's official files to ``<out>/images/<split>/`` and ``<out>/annotations/{train,
    valid,test}.json``; returns ``{split: {"images", "captions"}}`` (a split is skipped when
    its files are absent; test queries without answers give images only)."""
    muge_dir, out_dir = Path(muge_dir), Path(out_dir)
    if not muge_dir.is_dir():
        raise FileNotFoundError(f"MUGE folder not found: {muge_dir}")
    summary = {}
    for split in MUGE_SPLITS:
        tsv = muge_dir / f"{split}_imgs.tsv"
        queries_file = next(
            (
                muge_dir / name
                for name in (f"{split}_queries.jsonl", f"{split}_texts.jsonl")
                if (muge_dir / name).is_file()
            ),
            None,
        )
        if not tsv.is_file() and queries_file is None:
            continue
        if not tsv.is_file():
            raise FileNotFoundError(f"{queries_file} has no image file beside it: {tsv}")
        images = _muge_images(tsv, out_dir / "images", split)
        per_image: dict[str, dict] = defaultdict(lambda: {"captions": []})
        queries = _muge_queries(queries_file) if queries_file else []
        for text, items in queries:
            for item in items:
                if item not in images:
                    raise KeyError(
                        f"{queries_file}: query {text!r} names image {item}, absent from {tsv}"
                    )
                per_image[item]["image"] = images[item]
                per_image[item]["captions"].append(text)
        summary[split] = {"images": len(images), "captions": sum(len(q[1]) for q in queries)}
        if not per_image:  # the official test split: no answers to evaluate against
            continue
        records = _train_records(per_image) if split == "train" else _eval_records(per_image)
        _write(out_dir / "annotations", split, records)
    if not summary:
        raise FileNotFoundError(
            f"{muge_dir}: no MUGE files (expected <split>_imgs.tsv and <split>_queries.jsonl "
            f"for splits {MUGE_SPLITS})"
        )
    return summary
