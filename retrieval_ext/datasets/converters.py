"""Converters from each dataset's official annotation files to the builders' format.

Output: one JSON list per split, entries ``{"video": <file name>, "caption": [str, ...],
"video_id": str}`` (see :mod:`retrieval_ext.datasets.video_text`). Video files are
expected as ``<video_id><video_ext>`` in the video root. The splits follow CLIP4Clip.

- MSR-VTT: ``MSRVTT_data.json`` (``sentences``: ``{"video_id", "caption"}``), a training
  list (``MSRVTT_train.9k.csv`` or ``.7k.csv``, column ``video_id``) and a test list: the 1k-A
  list ``MSRVTT_JSFUSION_test.csv`` (columns ``video_id``, ``sentence``: one sentence per
  video) or a list of ids only (``MSRVTT_full_split_test.csv``, TeachCLIP's 7k protocol:
  every caption of each test video); train = the listed videos with all their captions.
  An optional validation list is converted as the test list is.
- MSVD: ``AllVideoDescriptions.txt`` (``<video_id> <caption words>`` lines, ``#`` comments)
  and ``train_list.txt`` / ``val_list.txt`` / ``test_list.txt`` (one id per line).
- DiDeMo: ``{train,val,test}_data.json`` (entries with ``video`` and ``description``): a
  video's descriptions joined in order into one paragraph (paragraph-to-video retrieval).
- ActivityNet Captions: ``train.json`` and ``val_1.json`` (``{video_id: {"duration",
  "timestamps", "sentences"}}``): paragraph-to-video as CLIP4Clip and TeachCLIP, train =
  ``train.json``, test (and val) = ``val_1.json``; a video's sentences joined in order.
- VATEX: ``vatex_training_v1.0.json`` and ``vatex_validation_v1.0.json`` (lists of
  ``{"videoID", "enCap", "chCap"}``) pooled, and one id list per split (TeachCLIP's
  ``VATEX_{train,val,test}.csv`` or a text file of ids); the English captions.
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


def _ids(path: Path, what: str) -> list[tuple[int, str]]:
    """``(line, video id)`` of a split list: a CSV with a ``video_id`` column (``.csv``; a
    video repeated once per sentence, as in MSR-VTT-style ``video_id,sentence`` test CSVs,
    counts once) or
    a text file of one id a line (a repeated id is an error)."""
    path = _need(path, what)
    is_csv = path.suffix.lower() == ".csv"
    if is_csv:
        rows = _csv_column(path, "video_id")
        numbered = [(index + 2, row["video_id"]) for index, row in enumerate(rows)]  # header=1
    else:
        numbered = list(enumerate(path.read_text().splitlines(), start=1))
    ids, seen = [], {}
    for line, video_id in numbered:
        video_id = (video_id or "").strip()
        if not video_id:
            if is_csv:
                raise ValueError(f"{path}, line {line}: empty video_id")
            continue  # blank lines of a text list
        if video_id in seen:
            if is_csv:
                continue
            raise ValueError(f"{path}, line {line}: {video_id} already on line {seen[video_id]}")
        seen[video_id] = line
        ids.append((line, video_id))
    if not ids:
        raise ValueError(f"{path}: no video ids")
    return ids


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


def convert_msrvtt(
    videodatainfo,
    train_csv,
    test_csv,
    out_dir,
    video_ext=".mp4",
    train_name="9k",
    test_name="1k-A",
    val_csv=None,
) -> dict:
    """Write ``train_<train_name>.json`` and ``test_<test_name>.json`` (and
    ``val_<test_name>.json`` from ``val_csv``); returns the entry counts."""
    data = json.loads(_need(videodatainfo, "MSR-VTT annotation file").read_text())
    if "sentences" not in data:
        raise KeyError(f"{videodatainfo}: expected a 'sentences' list (MSRVTT_data.json)")
    captions = defaultdict(list)
    for index, sentence in enumerate(data["sentences"]):
        if "video_id" not in sentence or "caption" not in sentence:
            raise KeyError(f"{videodatainfo}: sentences[{index}] needs 'video_id' and 'caption'")
        captions[sentence["video_id"]].append(sentence["caption"].strip())
    train_ids = [row["video_id"] for row in _csv_column(train_csv, "video_id")]
    splits = {f"train_{train_name}": _entries(captions, train_ids, video_ext, str(videodatainfo))}
    for split, path in (("val", val_csv), ("test", test_csv)):
        if path is not None:
            splits[f"{split}_{test_name}"] = _msrvtt_eval_split(
                path, captions, video_ext, str(videodatainfo)
            )
    return _write(out_dir, splits)


def _msrvtt_eval_split(path, captions, video_ext, source) -> list[dict]:
    """1k-A style (a ``sentence`` per row) or an id list (every caption of each video)."""
    rows = _csv_column(path, "video_id")
    if rows and "sentence" in rows[0]:
        return [
            {
                "video": f"{r['video_id']}{video_ext}",
                "caption": [r["sentence"].strip()],
                "video_id": r["video_id"],
            }
            for r in rows
        ]
    return _entries(captions, [r["video_id"] for r in rows], video_ext, source)


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


def _caption_list(value, where: str) -> list[str]:
    if not (isinstance(value, list) and value and all(isinstance(c, str) for c in value)):
        raise ValueError(f"{where}: expected a non-empty list of strings, got {value!r}")
    texts = [c.strip() for c in value]
    if not all(texts):
        raise ValueError(f"{where}: caption {texts.index('')} is empty")
    return texts


def convert_activitynet(
    ann_dir, out_dir, video_ext=".mp4", video_dir=None, strip_v_prefix=False
) -> dict:
    """Write ``paragraph_train.json`` (from ``train.json``) and ``paragraph_val_1.json``
    (from ``val_1.json``, CLIP4Clip's test set); returns the entry counts.

    One entry per video: its sentences, each stripped, joined in the listed order with one
    space (CLIP4Clip: ``" ".join(sentences)``, which keeps the files' leading spaces; the
    tokenizer ignores them). The video id is the key, ``v_<YouTube id>``. File names differ
    between the two reference loaders, both of which cut ``v_`` off the key: CLIP4Clip
    matches it against the file name as is (files ``<YouTube id>.<ext>``), TeachCLIP against
    the file name with its first two characters cut too (files ``v_<YouTube id>.<ext>``, as
    ActivityNet distributes them). Both accept any extension (the downloads mix .mp4, .mkv
    and .webm). Given ``video_dir``, a video's file is the one there named ``<key>.<ext>``
    or ``<key without v_>.<ext>`` (an error if several). Otherwise, and for a video not in
    ``video_dir`` (the builder then raises or skips it, per ``bad_video_policy``), the file
    is ``<key><video_ext>``, or ``<key without v_><video_ext>`` with ``strip_v_prefix``.
    """
    on_disk: dict[str, list[str]] = defaultdict(list)
    if video_dir is not None:
        if not Path(video_dir).is_dir():
            raise FileNotFoundError(f"ActivityNet video folder not found: {video_dir}")
        for file in Path(video_dir).iterdir():
            on_disk[file.stem].append(file.name)
    splits = {}
    for name, source in (("paragraph_train", "train.json"), ("paragraph_val_1", "val_1.json")):
        path = _need(Path(ann_dir) / source, f"ActivityNet Captions {source}")
        data = json.loads(path.read_text())
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected an object mapping video id to its annotation")
        entries = []
        for video_id, item in data.items():
            where = f"{path}, key {video_id!r}"
            if not isinstance(item, dict) or "sentences" not in item:
                raise KeyError(f"{where}: needs 'sentences' (and 'duration', 'timestamps')")
            sentences = _caption_list(item["sentences"], f"{where}, 'sentences'")
            timestamps = item.get("timestamps")
            if timestamps is not None and len(timestamps) != len(sentences):
                raise ValueError(
                    f"{where}: {len(timestamps)} timestamps for {len(sentences)} sentences"
                )
            bare = video_id[2:] if video_id.startswith("v_") else video_id
            files = on_disk.get(video_id, []) + (on_disk.get(bare, []) if bare != video_id else [])
            if len(files) > 1:
                raise ValueError(f"{where}: several files in {video_dir}: {sorted(files)}")
            if not files:
                files = [f"{bare if strip_v_prefix else video_id}{video_ext}"]
            entries.append(
                {
                    "video": files[0],
                    "caption": [" ".join(sentences)],
                    "video_id": video_id,
                }
            )
        splits[name] = entries
    return _write(out_dir, splits)


def convert_vatex(training_json, validation_json, split_lists, out_dir, video_ext=".mp4") -> dict:
    """Write one ``<split>.json`` per entry of ``split_lists`` (``{split: id list file}``,
    e.g. train / val / test); returns the entry counts.

    Captions: the ten English ``enCap`` of each video, from the official training and
    validation files pooled (the usual 25,991 / 1,500 / 1,500 split draws val and test from
    the official validation set). Files: ``<videoID><video_ext>`` with videoID
    ``<YouTube id>_<start>_<end>``, as TeachCLIP's (MSR-VTT) loader expects.
    """
    captions: dict[str, list[str]] = {}
    for path in (training_json, validation_json):
        path = _need(path, "VATEX annotation file")
        data = json.loads(path.read_text())
        if not isinstance(data, list):
            raise ValueError(f"{path}: expected a list of {{'videoID', 'enCap', 'chCap'}}")
        for index, item in enumerate(data):
            if not isinstance(item, dict) or "videoID" not in item or "enCap" not in item:
                raise KeyError(f"{path}: entry {index} needs 'videoID' and 'enCap'")
            where = f"{path}: entry {index} ({item['videoID']})"
            if item["videoID"] in captions:
                raise ValueError(f"{where}: videoID already seen")
            captions[item["videoID"]] = _caption_list(item["enCap"], f"{where}, 'enCap'")
    splits = {}
    for split, list_path in split_lists.items():
        numbered = _ids(list_path, f"VATEX {split} id list")
        absent = [f"line {line}: {i}" for line, i in numbered if i not in captions]
        if absent:
            raise ValueError(
                f"{list_path}: {len(absent)} id(s) are in neither {training_json} nor "
                f"{validation_json}: {'; '.join(absent[:5])}"
            )
        ids = [i for _, i in numbered]
        splits[split] = _entries(captions, ids, video_ext, str(list_path))
    return _write(out_dir, splits)
