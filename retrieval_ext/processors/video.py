"""Frame sampling and decoding for text-video retrieval (CLIP4Clip's input pipeline).

A processor takes a video path and returns ``{"video": [N, 3, S, S] float, "video_mask":
[N] long}``. Two samplings (``sampling``):

- ``fps`` (default; CLIP4Clip's ``feature_framerate`` with ``slice_framepos 2``):
  ``sample_fps`` frames per second of video (the frame rate truncated to an integer, as
  CLIP4Clip's OpenCV reader does), then, when that gives more than N frames, N of them
  evenly spaced (``np.linspace(0, n - 1, N)`` truncated). The same frames for training
  and evaluation.
- ``segments``: N equal segments, the centre frame of each at evaluation and a random frame
  inside each for training (TSN-style).

Frames are resized with antialiasing so that the shorter side is S (the longer side
truncated) and centre-cropped with rounded offsets, in uint8 before the conversion to
float: the same arithmetic as CLIP's PIL pipeline (``Resize(S, BICUBIC)``,
``CenterCrop(S)``), through torchvision's tensor functions. Then CLIP's mean/std. A video
with fewer than N sampled frames gives them followed by zero frames whose mask is 0, so
batches always collate.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torchvision.transforms.v2.functional as TF
from lavis.common.registry import registry
from lavis.processors.base_processor import BaseProcessor
from omegaconf import OmegaConf

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
BACKENDS = ("decord", "pyav")
SAMPLINGS = ("fps", "segments")


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


def sample_frame_indices_by_fps(
    num_available: int, fps: float, num_frames: int, sample_fps: int = 1
) -> np.ndarray:
    """CLIP4Clip's sampling: ``sample_fps`` frames a second, then at most ``num_frames`` of
    them evenly spaced.

    In each second ``s`` the frames ``s * rate + k * (rate // sample_fps)`` for ``k <
    sample_fps``, where ``rate`` is the frame rate truncated to an integer (CLIP4Clip's
    ``int(cv2.CAP_PROP_FPS)``), up to the last frame; when more than ``num_frames``
    remain, ``np.linspace(0, n - 1, num_frames)`` truncated picks them.
    """
    if num_available <= 0:
        raise ValueError(f"a video needs at least one frame, got {num_available}")
    rate = int(fps)
    if rate < 1:
        raise ValueError(f"fps sampling needs the video's frame rate, got {fps!r}")
    if not 1 <= sample_fps <= rate:
        raise ValueError(f"sample_fps must be in [1, {rate}] (the frame rate), got {sample_fps}")
    offsets = np.arange(0, rate, max(rate // sample_fps, 1))[:sample_fps]
    starts = np.arange(0, num_available, rate)
    indices = (starts[:, None] + offsets[None, :]).ravel()
    indices = indices[indices < num_available]
    if len(indices) > num_frames:
        indices = indices[np.linspace(0, len(indices) - 1, num=num_frames, dtype=int)]
    return indices.astype(np.int64)


def _decode_decord(path: str, sampler) -> np.ndarray:
    import decord

    reader = decord.VideoReader(path, num_threads=1)
    indices = sampler(len(reader), reader.get_avg_fps())
    batch = reader.get_batch(indices.tolist())
    # decord's output type is process-wide: LAVIS's ALPRO processors switch it to torch
    return batch.asnumpy() if hasattr(batch, "asnumpy") else np.asarray(batch)


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
        stream = container.streams.video[0]
        count = stream.frames
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else 0.0
    if count > 0:
        wanted = sampler(count, fps)
        kept, decoded = _pyav_pick(path, wanted)
        if len(kept) == len(set(wanted.tolist())):
            return np.stack([kept[i] for i in wanted])
        count = decoded
    else:
        count = _pyav_pick(path, np.array([np.iinfo(np.int64).max]))[1]
    wanted = sampler(count, fps)
    kept, _ = _pyav_pick(path, wanted)
    return np.stack([kept[i] for i in wanted])


def read_frames(
    path: str | Path,
    num_frames: int,
    backend: str = "decord",
    rng: np.random.Generator | None = None,
    sampling: str = "segments",
    sample_fps: int = 1,
) -> np.ndarray:
    """Decode at most ``num_frames`` sampled frames as ``[n, H, W, 3]`` uint8 RGB.

    Args:
        sampling: ``"segments"`` (one frame per equal segment: the centre, or a random one
            with ``rng``) or ``"fps"`` (CLIP4Clip: ``sample_fps`` frames a second, evenly
            thinned to ``num_frames``; ``rng`` unused).

    Raises:
        VideoDecodeError: naming the file, when it is missing or cannot be decoded.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown video backend {backend!r}; expected one of {BACKENDS}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"unknown frame sampling {sampling!r}; expected one of {SAMPLINGS}")
    path = str(path)
    if not Path(path).is_file():
        raise VideoDecodeError(f"video file not found: {path}")
    decode = _decode_decord if backend == "decord" else _decode_pyav
    if sampling == "fps":

        def sampler(count, fps):
            return sample_frame_indices_by_fps(count, fps, num_frames, sample_fps)
    else:

        def sampler(count, fps):
            return sample_frame_indices(count, num_frames, rng)

    try:
        frames = decode(path, sampler)
    except Exception as error:  # decord/PyAV raise many types; all mean "cannot decode"
        raise VideoDecodeError(
            f"cannot decode video {path} with {backend}: {type(error).__name__}: {error}"
        ) from error
    if frames.ndim != 4 or frames.shape[0] == 0:
        raise VideoDecodeError(f"no frames decoded from video {path} ({backend})")
    return frames


class _ClipVideoProcessor(BaseProcessor):
    """Shared by the train and eval processors: decode, resize, crop, normalise, pad.

    Args:
        image_size: Side S of the square crop.
        num_frames: Frames N per video (``n_frms`` in configs; CLIP4Clip's ``max_frames``).
        backend: ``decord`` or ``pyav``.
        sampling: ``fps`` (CLIP4Clip; default) or ``segments`` (see the module docstring).
        sample_fps: Frames per second of video for ``fps`` sampling (CLIP4Clip: 1).
    """

    random_offsets = False

    def __init__(
        self,
        image_size: int = 224,
        num_frames: int = 12,
        backend: str = "decord",
        mean=CLIP_MEAN,
        std=CLIP_STD,
        sampling: str = "fps",
        sample_fps: int = 1,
    ):
        if backend not in BACKENDS:
            raise ValueError(f"unknown video backend {backend!r}; expected one of {BACKENDS}")
        if sampling not in SAMPLINGS:
            raise ValueError(f"unknown frame sampling {sampling!r}; expected one of {SAMPLINGS}")
        self.image_size = int(image_size)
        self.num_frames = int(num_frames)
        self.backend = backend
        self.sampling = sampling
        self.sample_fps = int(sample_fps)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)

    def transform(self, frames: np.ndarray) -> torch.Tensor:
        """``[n, H, W, 3]`` uint8 -> ``[n, 3, S, S]`` normalised float.

        Resized and cropped while still uint8 (a quarter of float's memory; a 720p clip of
        64 frames is 177 MB as uint8), with the arithmetic of CLIP's PIL pipeline.
        """
        video = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
        video = TF.resize(
            video,
            [self.image_size],  # the shorter side; the longer one truncated, as PIL's Resize
            interpolation=TF.InterpolationMode.BICUBIC,
            antialias=True,
        )
        video = TF.center_crop(video, [self.image_size, self.image_size])  # rounded offsets
        return (video.float() / 255 - self.mean) / self.std

    def __call__(self, path) -> dict:
        # offsets drawn from torch's generator: seeded by the run, distinct per loader worker
        rng = (
            np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,))))
            if self.random_offsets and self.sampling == "segments"
            else None
        )
        frames = read_frames(
            path, self.num_frames, self.backend, rng, self.sampling, self.sample_fps
        )
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
            sampling=cfg.get("sampling", "fps"),
            sample_fps=cfg.get("sample_fps", 1),
        )


@registry.register_processor("clip4clip_video_train")
class ClipVideoTrainProcessor(_ClipVideoProcessor):
    """Training: ``fps`` sampling takes the evaluation frames (as CLIP4Clip); ``segments``
    takes a random frame inside each of the N segments."""

    random_offsets = True


@registry.register_processor("clip4clip_video_eval")
class ClipVideoEvalProcessor(_ClipVideoProcessor):
    """Evaluation: ``fps`` sampling (CLIP4Clip), or the centre frame of each of the N
    segments with ``segments``."""
