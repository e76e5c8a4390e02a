"""LAVIS dataset builders for local image-text retrieval data (nothing is downloaded).

LAVIS's ``coco_retrieval`` and ``flickr30k`` builders fetch every annotation split from a
``url`` and copy it into LAVIS's cache. These read the same annotation format where it
is: ``build_info.annotations.<split>.storage`` (a path or a list of paths) and
``build_info.images.storage`` (the image root); relative paths resolve against the
working directory, and a URL is refused. ``bad_image_policy`` (``raise`` or ``skip``) is
passed to the datasets (see :mod:`retrieval_ext.datasets.image_text`).
"""

from __future__ import annotations

import os

from retrieval_ext.configs import default_config_path
from retrieval_ext.datasets.builders import _local
from retrieval_ext.datasets.image_text import ImageTextEvalDataset, ImageTextTrainDataset

from lavis.common.registry import registry
from lavis.datasets.builders.base_dataset_builder import BaseDatasetBuilder

from plugins.compat import lavis_lookup


class LocalImageTextBuilder(BaseDatasetBuilder):
    """Builds ``train`` / ``val`` / ``test`` from local annotation files and an image root."""

    train_dataset_cls = ImageTextTrainDataset
    eval_dataset_cls = ImageTextEvalDataset

    @classmethod
    def default_config_path(cls, type="default"):
        return default_config_path(
            cls.__name__, "dataset config type", cls.DATASET_CONFIG_DICT, type, "datasets"
        )

    @staticmethod
    def _build_proc_from_cfg(cfg):
        return lavis_lookup("processor", cfg.name).from_config(cfg) if cfg is not None else None

    def _download_data(self):
        """Nothing to download."""

    def build(self):
        self.build_processors()
        build_info = self.config.build_info
        if build_info.get("images") is None or build_info.images.get("storage") is None:
            raise KeyError("build_info.images.storage (the local image folder) is required")
        vis_root = _local(build_info.images.storage, "build_info.images.storage")
        if not os.path.isdir(vis_root):
            raise FileNotFoundError(f"image root not found: {vis_root} (build_info.images.storage)")
        policy = self.config.get("bad_image_policy", "raise")
        datasets = {}
        for split, info in build_info.annotations.items():
            if split not in ("train", "val", "test"):
                continue
            storage = info.get("storage")
            if storage is None:
                raise KeyError(f"build_info.annotations.{split} needs 'storage' (a local path)")
            paths = [storage] if isinstance(storage, str) else list(storage)
            paths = [_local(p, f"build_info.annotations.{split}.storage") for p in paths]
            is_train = split == "train"
            mode = "train" if is_train else "eval"
            dataset_cls = self.train_dataset_cls if is_train else self.eval_dataset_cls
            datasets[split] = dataset_cls(
                vis_processor=self.vis_processors[mode],
                text_processor=self.text_processors[mode],
                ann_paths=paths,
                vis_root=vis_root,
                policy=policy,
            )
        return datasets


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
    """MUGE e-commerce retrieval (Chinese queries), converted by ``tools/convert_muge.py``."""

    DATASET_CONFIG_DICT = {"default": "muge_image_text.yaml"}


@registry.register_builder("embedded_image_text")
class EmbeddedImageTextBuilder(LocalImageTextBuilder):
    """The generated scenes of ``tools/make_image_text_dataset.py``."""

    DATASET_CONFIG_DICT = {"default": "embedded_image_text.yaml"}
