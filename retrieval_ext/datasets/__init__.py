"""Local text-video and image-text datasets and their LAVIS builders."""

from retrieval_ext.datasets.builders import (
    ActivityNetTextVideoBuilder,
    DiDeMoTextVideoBuilder,
    EmbeddedTextVideoBuilder,
    LocalVideoTextBuilder,
    MSRVTTTextVideoBuilder,
    MSVDTextVideoBuilder,
    VATEXTextVideoBuilder,
)
from retrieval_ext.datasets.image_text import ImageTextEvalDataset, ImageTextTrainDataset
from retrieval_ext.datasets.image_text_builders import (
    COCOKarpathyImageTextBuilder,
    EmbeddedImageTextBuilder,
    Flickr30kImageTextBuilder,
    LocalImageTextBuilder,
    MUGEImageTextBuilder,
)
from retrieval_ext.datasets.image_text_pretrain import EmbeddedImageTextPretrainBuilder
from retrieval_ext.datasets.video_text import (
    VideoTextEvalDataset,
    VideoTextTrainDataset,
    load_annotations,
)

__all__ = [
    "ActivityNetTextVideoBuilder",
    "COCOKarpathyImageTextBuilder",
    "EmbeddedImageTextBuilder",
    "EmbeddedImageTextPretrainBuilder",
    "Flickr30kImageTextBuilder",
    "ImageTextEvalDataset",
    "ImageTextTrainDataset",
    "LocalImageTextBuilder",
    "MUGEImageTextBuilder",
    "DiDeMoTextVideoBuilder",
    "EmbeddedTextVideoBuilder",
    "LocalVideoTextBuilder",
    "MSRVTTTextVideoBuilder",
    "MSVDTextVideoBuilder",
    "VATEXTextVideoBuilder",
    "VideoTextEvalDataset",
    "VideoTextTrainDataset",
    "load_annotations",
]
