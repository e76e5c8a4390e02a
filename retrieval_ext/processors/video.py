"""Frame sampling and decoding for text-video retrieval (CLIP4Clip's input pipeline).

A processor takes a video path and returns ``{"video": [N, 3, S, S] float, "video_mask":
[N] long}``: N frames sampled uniformly over the video (one per equal segment: the segment
centre at evaluation, a random offset inside the segment for training), resized on the
short side and centre-cropped to S, normalised with CLIP's mean/std. A video with fewer
than N frames gives all its frames followed by zero frames whose mask is 0, so batches
always collate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from lavis.common.registry import registry
from lavis.processors.base_processor import BaseProcessor
from omegaconf import OmegaConf

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
BACKENDS = ("decord", "pyav")


class VideoDecodeError(RuntimeError):
    """A video that is missing or cannot be decoded; the message names the file."""


def sample_frame_indices(
    num_available: int, num_frames: int, rng: np.random.Generator | None = None
) -> np.ndarray:
    """Indices of ``min(num_frames, num_available)`` frames, one per equal segment.

    Args:
        num_available: Frames in the video (> 0).
        num_frames: Frames asked for.
        rng: With a generator, a random frame inside each segment (training); without, the
            segment's centre (evaluation).
    """
    if num_available <= 0:
        raise ValueError(f"a video needs at least one frame, got {num_available}")
    if num_available <= num_frames:
        return np.arange(num_available)
    edges = np.linspace(0, num_available, num_frames + 1)
    if rng is None:
        return ((edges[:-1] + edges[1:]) / 2).astype(np.int64)
    starts, ends = np.floor(edges[:-1]), np.maximum(np.floor(edges[1:]), np.floor(edges[:-1]) + 1)
    return np.minimum(rng.integers(starts, ends), num_available - 1).astype(np.int64)


def _decode_decord(path: str, sampler) -> np.ndarray:
    import decord

    reader = decord.VideoReader(path, num_threads=1)
    indices = sampler(len(reader))
    return reader.get_batch(indices.tolist()).asnumpy()


def _pyav_pick(path: str, wanted: np.ndarray) -> tuple[dict, int]:
    """Decode up to the last wanted frame, converting and keeping only the wanted ones;
    returns ``({index: frame}, frames decoded)``."""
    import av

    wanted_set, last = set(wanted.tolist()), int(wanted.max())
    kept, decoded = {}, 0
    with av.open(path) as container:
        for index, frame in enumerate(container.decode(video=0)):
            decoded = index + 1
            if index in wanted_set:
                kept[index] = frame.to_ndarray(format="rgb24")
            if index == last:
                break
    return kept, decoded


def _decode_pyav(path: str, sampler) -> np.ndarray:
    # Memory stays at the sampled frames (a minute of 1080p is gigabytes as RGB). The
    # container's frame count picks them; without one (some webm/mkv), or when the stream
    # ends before the count, a first pass counts the frames and a second one picks. A
    # count below the real one is trusted (frames past it are never sampled); mp4 and mov
    # store an exact count.
    import av

    with av.open(path) as container:
        count = container.streams.video[0].frames
    if count > 0:
        wanted = sampler(count)
        kept, decoded = _pyav_pick(path, wanted)
        if len(kept) == len(set(wanted.tolist())):
            return np.stack([kept[i] for i in wanted])
        count = decoded
    else:
        count = _pyav_pick(path, np.array([np.iinfo(np.int64).max]))[1]
    wanted = sampler(count)
    kept, _ = _pyav_pick(path, wanted)
    return np.stack([kept[i] for i in wanted])


def read_frames(
    path: str | Path,
    num_frames: int,
    backend: str = "decord",
    rng: np.random.Generator | None = None,
) -> np.ndarray:
    """Decode ``num_frames`` (or all, if fewer) uniformly sampled frames as ``[n, H, W, 3]``
    uint8 RGB; raises :class:`VideoDecodeError` naming the file when it is missing or
    cannot be decoded."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; expected one of {BACKENDS}")
    path = str(path)
    if not Path(path).is_file():
        raise VideoDecodeError(f"video file not found: {path}")
    decode = _decode_decord if backend == "decord" else _decode_pyav
    try:
        frames = decode(path, lambda n: sample_frame_indices(n, num_frames, rng))
    except Exception as error:  # decord/PyAV raise many types; all mean "cannot decode"
        raise VideoDecodeError(
            f"cannot decode video {path} with {backend}: {type(error).__name__}: {error}"
        ) from error
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise VideoDecodeError(f"no frames decoded from video {path} ({backend})")
    return frames


class _ClipVideoProcessor(BaseProcessor):
    """Shared by the train and eval processors: decode, resize, crop, normalise, pad."""

    random_offsets = False

    def __init__(
        self,
        image_size: int = 224,
        num_frames: int = 12,
        backend: str = "decord",
        mean=CLIP_MEAN,
        std=CLIP_STD,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"unknown video backend {backend!r}; expected one of {BACKENDS}")
        self.image_size = int(image_size)
        self.num_frames = int(num_frames)
        self.backend = backend
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def transform(self, frames: np.ndarray) -> torch.Tensor:
        """``[n, H, W, 3]`` uint8 -> ``[n, 3, S, S]`` normalised float."""
        video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float() / 255
        height, width = video.shape[-2:]
        scale = self.image_size / min(height, width)
        size = (
            max(self.image_size, round(height * scale)),
            max(self.image_size, round(width * scale)),
        )
        if size != (height, width):
            video = F.interpolate(video, size=size, mode="bicubic", align_corners=False)
        top, left = (size[0] - self.image_size) // 2, (size[1] - self.image_size) // 2
        video = video[..., top : top + self.image_size, left : left + self.image_size]
        return (video.clamp(0, 1) - self.mean) / self.std

    def __call__(self, path) -> dict:
        # offsets drawn from torch's generator: seeded by the run, distinct per loader worker
        rng = (
            np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
            if self.random_offsets
            else None
        )
        frames = read_frames(path, self.num_frames, self.backend, rng)
        video = self.transform(frames)  # [n, 3, S, S], n <= num_frames
        mask = torch.zeros(self.num_frames, dtype=torch.long)
        mask[: video.shape[0]] = 1
        if video.shape[0] < self.num_frames:  # short video: zero frames, masked out
            pad = video.new_zeros(self.num_frames - video.shape[0], *video.shape[1:])
            video = torch.cat([video, pad])
        return {"video": video, "video_mask": mask}

    @classmethod
    def from_config(cls, cfg=None):
        cfg = cfg if cfg is not None else OmegaConf.create()
        return cls(
            image_size=cfg.get("image_size", 224),
            num_frames=cfg.get("n_frms", 12),
            backend=cfg.get("backend", "decord"),
            mean=tuple(cfg.get("mean", CLIP_MEAN)),
            std=tuple(cfg.get("std", CLIP_STD)),
        )


@registry.register_processor("clip4clip_video_train")
class ClipVideoTrainProcessor(_ClipVideoProcessor):
    """Training: a random frame inside each of the N segments."""

    random_offsets = True


@registry.register_processor("clip4clip_video_eval")
class ClipVideoEvalProcessor(_ClipVideoProcessor):
    """Evaluation: the centre frame of each of the N segments."""
