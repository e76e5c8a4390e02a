"""Video processors registered in LAVIS's registry."""

from retrieval_ext.processors.video import (
    ClipVideoEvalProcessor,
    ClipVideoTrainProcessor,
    VideoDecodeError,
    sample_frame_indices,
    sample_frame_indices_by_fps,
)

__all__ = [
    "ClipVideoEvalProcessor",
    "ClipVideoTrainProcessor",
    "VideoDecodeError",
    "sample_frame_indices",
    "sample_frame_indices_by_fps",
]
