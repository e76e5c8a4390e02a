"""Local text-video datasets in one annotation format shared by every builder.

Annotation file: a JSON list of entries ``{"video": <path relative to the video root>,
"caption": <str or list of str>}`` (an optional ``"video_id"`` is kept for reporting; an
optional ``"content_frames"``, the 0-based frames that show what the captions say, is kept
for the text-video task's frame-weight metrics).
Training yields one item per caption; evaluation yields one item per video, with every
caption in ``text`` and the maps ``txt2video`` / ``video2txt`` (also exposed under LAVIS's
names ``txt2img`` / ``img2txt``).

Bad-video policy (``bad_video_policy``): ``"raise"`` (default) stops with an error naming
the file, when the annotation is read for a missing file and when a video is decoded for
one that cannot be; ``"skip"`` drops entries whose file is missing at construction (logged
and listed in ``dataset.skipped``) and, in training only, replaces an undecodable video
by another item (logged by the process that met it, and counted in
``dataset.decode_skips``, shared by every DataLoader worker). An evaluation gallery never
skips a video at decode time: the metrics would silently change meaning.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
from pathlib import Path

from retrieval_ext.processors.video import VideoDecodeError

from torch.utils.data import Dataset, default_collate

POLICIES = ("raise", "skip")
REQUIRED_KEYS = ("video", "caption")


def check_content_frames(frames, where: str) -> list[int]:
    """The optional ``content_frames`` of an entry: distinct 0-based frame indices (the
    frames that show what the captions say; the fine-grained generator writes them)."""
    if not (
        isinstance(frames, list)
        and frames
        and all(isinstance(f, int) and not isinstance(f, bool) and f >= 0 for f in frames)
        and len(set(frames)) == len(frames)
    ):
        raise ValueError(
            f"{where}: 'content_frames' must be a non-empty list of distinct 0-based frame "
            f"indices, got {frames!r}"
        )
    return frames


def load_annotations(ann_paths, vis_root: str | Path, policy: str = "raise"):
    """Read and check annotation files; returns ``(entries, skipped)``.

    Each entry comes back as ``{"video": absolute path, "captions": [str, ...],
    "video_id": str}``, with ``"content_frames"`` when the annotation has it. Raises
    ``ValueError`` naming the file, the entry index and the missing or malformed key;
    ``FileNotFoundError`` naming missing videos unless ``policy == "skip"``.
    """
    if policy not in POLICIES:
        raise ValueError(f"bad_video_policy must be one of {POLICIES}, got {policy!r}")
    vis_root = Path(vis_root)
    entries, missing = [], []
    for ann_path in [ann_paths] if isinstance(ann_paths, (str, Path)) else ann_paths:
        ann_path = Path(ann_path)
        if not ann_path.is_file():
            raise FileNotFoundError(f"annotation file not found: {ann_path}")
        raw = json.loads(ann_path.read_text())
        if not isinstance(raw, list):
            raise ValueError(
                f"{ann_path}: expected a JSON list of entries, got {type(raw).__name__}"
            )
        for index, entry in enumerate(raw):
            where = f"{ann_path}, entry {index}"
            if not isinstance(entry, dict):
                raise ValueError(f"{where}: expected an object, got {type(entry).__name__}")
            absent = [key for key in REQUIRED_KEYS if key not in entry]
            if absent:
                raise ValueError(
                    f"{where}: missing required key(s) {absent}; an entry needs 'video' "
                    f"(path relative to {vis_root}) and 'caption' (a string or a list of "
                    f"strings); it has {sorted(entry)}"
                )
            captions = entry["caption"]
            captions = [captions] if isinstance(captions, str) else captions
            if not (
                isinstance(captions, list)
                and captions
                and all(isinstance(c, str) and c.strip() for c in captions)
            ):
                raise ValueError(
                    f"{where}: 'caption' must be a non-empty string or a non-empty list of "
                    f"non-empty strings, got {entry['caption']!r}"
                )
            video = vis_root / entry["video"]
            if not video.is_file():
                missing.append(str(video))
                continue
            video_id = str(entry.get("video_id", Path(entry["video"]).stem))
            record = {"video": str(video), "captions": captions, "video_id": video_id}
            if "content_frames" in entry:
                record["content_frames"] = check_content_frames(entry["content_frames"], where)
            entries.append(record)
    if missing and policy == "raise":
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise FileNotFoundError(
            f"{len(missing)} video file(s) named in the annotations do not exist: {shown} "
            f"(set bad_video_policy: skip to drop such entries)"
        )
    if missing:
        logging.warning("skipped %d annotation entries whose video is missing", len(missing))
    return entries, missing


class VideoTextTrainDataset(Dataset):
    """One item per (video, caption) pair."""

    def __init__(self, vis_processor, text_processor, ann_paths, vis_root, policy="raise"):
        self.vis_processor, self.text_processor = vis_processor, text_processor
        self.policy = policy
        self.entries, missing = load_annotations(ann_paths, vis_root, policy)
        self.skipped = list(missing)
        # shared memory: DataLoader workers inherit it, so their skips reach this process
        self._decode_skips = multiprocessing.get_context().Value("i", 0)
        self.pairs = [
            (video_index, caption)
            for video_index, entry in enumerate(self.entries)
            for caption in entry["captions"]
        ]

    def __len__(self):
        return len(self.pairs)

    @property
    def decode_skips(self) -> int:
        """Undecodable videos replaced so far, by this process and every loader worker."""
        return self._decode_skips.value

    def __getitem__(self, index):
        for attempt in range(len(self.pairs)):
            video_index, caption = self.pairs[(index + attempt) % len(self.pairs)]
            path = self.entries[video_index]["video"]
            try:
                sample = self.vis_processor(path)
            except VideoDecodeError as error:
                if self.policy == "raise":
                    raise
                logging.warning("skipping an undecodable training video: %s", error)
                self.skipped.append(path)  # this process's list; the count is shared
                with self._decode_skips.get_lock():
                    self._decode_skips.value += 1
                continue
            return {
                **sample,
                "text_input": self.text_processor(caption),
                "video_index": video_index,
            }
        raise VideoDecodeError("no video of this dataset could be decoded")

    def collater(self, samples):
        return default_collate(samples)


class VideoTextEvalDataset(Dataset):
    """One item per video; every caption in ``text`` with the ground-truth maps."""

    def __init__(self, vis_processor, text_processor, ann_paths, vis_root, policy="raise"):
        self.vis_processor, self.text_processor = vis_processor, text_processor
        self.entries, self.skipped = load_annotations(ann_paths, vis_root, policy)
        self.text, self.txt2video, self.video2txt = [], {}, {}
        for video_index, entry in enumerate(self.entries):
            self.video2txt[video_index] = []
            for caption in entry["captions"]:
                self.video2txt[video_index].append(len(self.text))
                self.txt2video[len(self.text)] = video_index
                self.text.append(text_processor(caption))
        # LAVIS's retrieval datasets call videos "images"
        self.txt2img, self.img2txt = self.txt2video, self.video2txt
        self.image = [entry["video"] for entry in self.entries]

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, index):
        return {**self.vis_processor(self.entries[index]["video"]), "index": index}

    def collater(self, samples):
        return default_collate(samples)


def video_ids(dataset) -> list[str]:
    """Video ids of an evaluation dataset, in gallery order."""
    return [entry["video_id"] for entry in dataset.entries]


__all__ = [
    "POLICIES",
    "VideoTextEvalDataset",
    "VideoTextTrainDataset",
    "load_annotations",
    "video_ids",
]
