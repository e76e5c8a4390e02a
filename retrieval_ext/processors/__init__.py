"""Video processors registered in LAVIS's registry."""

from retrieval_ext.processors.video import (
    ClipVideoEvalProcessor,
    ClipVideoTrainProcessor,
    VideoDecodeError,
    sample_frame_indices,
)

__all__ = [
    "ClipVideoEvalProcessor",
    "ClipVideoTrainProcessor",
    "VideoDecodeError",
    "sample_frame_indices",
]
