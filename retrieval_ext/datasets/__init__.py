"""Local text-video datasets and their LAVIS builders."""

from retrieval_ext.datasets.builders import (
    DiDeMoTextVideoBuilder,
    EmbeddedTextVideoBuilder,
    LocalVideoTextBuilder,
    MSRVTTTextVideoBuilder,
    MSVDTextVideoBuilder,
)
from retrieval_ext.datasets.video_text import (
    VideoTextEvalDataset,
    VideoTextTrainDataset,
    load_annotations,
)

__all__ = [
    "DiDeMoTextVideoBuilder",
    "EmbeddedTextVideoBuilder",
    "LocalVideoTextBuilder",
    "MSRVTTTextVideoBuilder",
    "MSVDTextVideoBuilder",
    "VideoTextEvalDataset",
    "VideoTextTrainDataset",
    "load_annotations",
]
