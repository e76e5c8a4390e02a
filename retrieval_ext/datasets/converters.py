"""Converters from each dataset's official annotation files to the builders' format.

Output: one JSON list per split, entries ``{"video": <file name>, "caption": [str, ...],
"video_id": str}`` (see :mod:`retrieval_ext.datasets.video_text`). Video files are
expected as ``<video_id><video_ext>`` in the video root. The splits follow CLIP4Clip.

- MSR-VTT: ``MSRVTT_data.json`` (``sentences``: ``{"video_id", "caption"}``), the 9k
  training list ``MSRVTT_train.9k.csv`` (column ``video_id``) and the 1k-A test list
  ``MSRVTT_JSFUSION_test.csv`` (columns ``video_id``, ``sentence``): train = the 9k videos
  with all their captions; test = 1k-A, one sentence per video.
- MSVD: ``AllVideoDescriptions.txt`` (``<video_id> <caption words>`` lines, ``#`` comments)
  and ``train_list.txt`` / ``val_list.txt`` / ``test_list.txt`` (one id per line).
- DiDeMo: ``{train,val,test}_data.json`` (entries with ``video`` and ``description``): a
  video's descriptions joined in order into one paragraph (paragraph-to-video retrieval).
"""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path


def _need(path: Path, what: str) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} not found: {path}")
    return path


def _entries(captions: dict[str, list[str]], ids: list[str], video_ext: str, source: str):
    missing = [i for i in ids if not captions.get(i)]
    if missing:
        raise ValueError(f"{source}: no captions for {len(missing)} video(s), e.g. {missing[:5]}")
    return [{"video": f"{i}{video_ext}", "caption": captions[i], "video_id": i} for i in ids]


def _write(out_dir: Path, splits: dict[str, list[dict]]) -> dict[str, int]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, entries in splits.items():
        (out_dir / f"{name}.json").write_text(json.dumps(entries, indent=1))
    return {name: len(entries) for name, entries in splits.items()}


def _csv_column(path: Path, column: str) -> list[dict]:
    with open(_need(path, "CSV file"), newline="") as f:
        rows = list(csv.DictReader(f))
    if rows and column not in rows[0]:
        raise KeyError(f"{path}: no column {column!r}; columns are {sorted(rows[0])}")
    return rows


def convert_msrvtt(videodatainfo, train_csv, test_csv, out_dir, video_ext=".mp4") -> dict:
    """Write ``train_9k.json`` and ``test_1k-A.json``; returns the entry counts."""
    data = json.loads(_need(videodatainfo, "MSR-VTT annotation file").read_text())
    if "sentences" not in data:
        raise KeyError(f"{videodatainfo}: expected a 'sentences' list (MSRVTT_data.json)")
    captions = defaultdict(list)
    for index, sentence in enumerate(data["sentences"]):
        if "video_id" not in sentence or "caption" not in sentence:
            raise KeyError(f"{videodatainfo}: sentences[{index}] needs 'video_id' and 'caption'")
        captions[sentence["video_id"]].append(sentence["caption"].strip())
    train_ids = [row["video_id"] for row in _csv_column(train_csv, "video_id")]
    test_rows = _csv_column(test_csv, "sentence")
    test = [
        {
            "video": f"{r['video_id']}{video_ext}",
            "caption": [r["sentence"].strip()],
            "video_id": r["video_id"],
        }
        for r in test_rows
    ]
    train = _entries(captions, train_ids, video_ext, str(videodatainfo))
    return _write(out_dir, {"train_9k": train, "test_1k-A": test})


def convert_msvd(descriptions, split_dir, out_dir, video_ext=".avi") -> dict:
    """Write ``train.json``, ``val.json``, ``test.json``; returns the entry counts."""
    captions = defaultdict(list)
    for line in _need(descriptions, "MSVD descriptions").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        video_id, _, caption = line.partition(" ")
        if caption.strip():
            captions[video_id].append(caption.strip())
    splits = {}
    for split in ("train", "val", "test"):
        ids_file = _need(Path(split_dir) / f"{split}_list.txt", f"MSVD {split} list")
        ids = [line.strip() for line in ids_file.read_text().splitlines() if line.strip()]
        splits[split] = _entries(captions, ids, video_ext, str(descriptions))
    return _write(out_dir, splits)


def convert_didemo(ann_dir, out_dir, video_ext=".mp4") -> dict:
    """Write ``train.json``, ``val.json``, ``test.json`` (one paragraph per video)."""
    splits = {}
    for split in ("train", "val", "test"):
        path = _need(Path(ann_dir) / f"{split}_data.json", f"DiDeMo {split} annotations")
        paragraphs = defaultdict(list)
        for index, item in enumerate(json.loads(path.read_text())):
            if "video" not in item or "description" not in item:
                raise KeyError(f"{path}: entry {index} needs 'video' and 'description'")
            paragraphs[Path(item["video"]).stem].append(item["description"].strip())
        splits[split] = [
            {"video": f"{vid}{video_ext}", "caption": [" ".join(texts)], "video_id": vid}
            for vid, texts in paragraphs.items()
        ]
    return _write(out_dir, splits)
