"""Small, exact mp4 round trips shared by the doctor and the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_mp4(path: Path, frames: np.ndarray, fps: int = 8) -> Path:
    """Write ``frames`` (``[T, H, W, 3]`` uint8 RGB, even H and W) as H.264 mp4 with PyAV."""
    import av

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(
            f"{path}: expected uint8 frames [T, H, W, 3], got {frames.dtype} {frames.shape}"
        )
    if frames.shape[1] % 2 or frames.shape[2] % 2:
        raise ValueError(f"{path}: yuv420p needs even height and width, got {frames.shape[1:3]}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        # Without rc-lookahead (and its thread) x264 encodes the same frames the same way
        # every time; with it, about 1 clip in 40 of our 32x32 clips decoded differently
        # from one run to the next, so seeded datasets were not reproducible.
        stream.options = {"crf": "18", "x264-params": "threads=1:rc-lookahead=0"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def decode_pyav(path: Path) -> np.ndarray:
    """All frames of ``path`` as ``[T, H, W, 3]`` uint8 RGB, decoded by PyAV."""
    import av

    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def decode_decord(path: Path) -> np.ndarray:
    """All frames of ``path`` as ``[T, H, W, 3]`` uint8 RGB, decoded by decord."""
    import decord

    reader = decord.VideoReader(str(path), num_threads=1)
    return reader.get_batch(list(range(len(reader)))).asnumpy()


def moving_square_clip(num_frames: int = 8, size: int = 32, seed: int = 0) -> np.ndarray:
    """A seeded clip of a coloured square moving right across a dark gradient."""
    rng = np.random.default_rng(seed)
    gradient = np.linspace(10, 70, size, dtype=np.float32)[None, :, None]
    background = np.broadcast_to(gradient, (size, size, 3)).astype(np.uint8)
    frames = np.repeat(background[None], num_frames, axis=0)
    side = max(size // 4, 2)
    colour = rng.integers(150, 256, size=3, dtype=np.uint8)
    for t in range(num_frames):
        x = int((size - side) * t / max(num_frames - 1, 1))
        frames[t, size // 2 - side // 2 : size // 2 + side // 2, x : x + side] = colour
    return frames
