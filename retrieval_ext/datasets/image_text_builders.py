"""LAVIS dataset builders for local image-text retrieval data (nothing is downloaded).

LAVIS's ``coco_retrieval`` and ``flickr30k`` builders fetch every annotation split from a
``url`` and copy it into LAVIS's cache. These read the same annotation format where it
is: ``build_info.annotations.<split>.storage`` (a path or a list of paths) and
``build_info.images.storage`` (the image root); relative paths resolve against the
working directory, and a URL is refused. ``bad_image_policy`` (``raise`` or ``skip``) is
passed to the datasets (see :mod:`retrieval_ext.datasets.image_text`).
"""

from __future__ import annotations

from retrieval_ext.datasets.builders import LocalRetrievalBuilder
from retrieval_ext.datasets.image_text import ImageTextEvalDataset, ImageTextTrainDataset

from lavis.common.registry import registry


class LocalImageTextBuilder(LocalRetrievalBuilder):
    """Local annotation files and an image root (``build_info.images.storage``)."""

    media = "images"
    policy_key = "bad_image_policy"
    train_dataset_cls = ImageTextTrainDataset
    eval_dataset_cls = ImageTextEvalDataset


@registry.register_builder("coco_karpathy_image_text")
class COCOKarpathyImageTextBuilder(LocalImageTextBuilder):
    """COCO with Karpathy's 113k / 5k / 5k split, LAVIS's ``coco_karpathy_*.json`` files."""

    DATASET_CONFIG_DICT = {"default": "coco_karpathy_image_text.yaml"}


@registry.register_builder("flickr30k_image_text")
class Flickr30kImageTextBuilder(LocalImageTextBuilder):
    """Flickr30k with Karpathy's 29k / 1k / 1k split, LAVIS's ``flickr30k_*.json`` files."""

    DATASET_CONFIG_DICT = {"default": "flickr30k_image_text.yaml"}


@registry.register_builder("muge_image_text")
class MUGEImageTextBuilder(LocalImageTextBuilder):
    """MUGE e-commerce retrieval (Chinese queries), converted by
    ``tools/data/lavis/convert_muge.py``."""

    DATASET_CONFIG_DICT = {"default": "muge_image_text.yaml"}


@registry.register_builder("embedded_image_text")
class EmbeddedImageTextBuilder(LocalImageTextBuilder):
    """The generated scenes of ``tools/data/lavis/make_image_text_dataset.py``."""

    DATASET_CONFIG_DICT = {"default": "embedded_image_text.yaml"}
