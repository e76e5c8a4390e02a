"""LAVIS dataset builders for local text-video retrieval data (nothing is downloaded).

LAVIS's own builders copy or download every annotation split from a ``url`` into its cache
root. These read annotation files where they are: ``build_info.annotations.<split>.storage``
(a path or a list of paths) and ``build_info.videos.storage`` (the video root); relative
paths resolve against the current working directory. ``bad_video_policy`` (``raise`` or
``skip``) is passed to the datasets (see :mod:`retrieval_ext.datasets.video_text`).
"""

from __future__ import annotations

import os

from retrieval_ext.configs import default_config_path
from retrieval_ext.datasets.video_text import VideoTextEvalDataset, VideoTextTrainDataset

from lavis.common.registry import registry
from lavis.datasets.builders.base_dataset_builder import BaseDatasetBuilder

from plugins.compat import lavis_lookup


def _local(path: str, what: str) -> str:
    if "://" in str(path):
        raise ValueError(f"{what}: {path!r} is a URL; these builders read local files only")
    return os.path.abspath(os.path.expanduser(str(path)))


class LocalRetrievalBuilder(BaseDatasetBuilder):
    """Builds ``train`` / ``val`` / ``test`` from local annotation files and a media root
    (``build_info.<media>.storage``); subclasses name the media and the dataset classes."""

    media = "videos"  # the build_info key of the media root
    policy_key = "bad_video_policy"
    train_dataset_cls = eval_dataset_cls = None

    @classmethod
    def default_config_path(cls, type="default"):
        return default_config_path(
            cls.__name__, "dataset config type", cls.DATASET_CONFIG_DICT, type, "datasets"
        )

    @staticmethod
    def _build_proc_from_cfg(cfg):
        return lavis_lookup("processor", cfg.name).from_config(cfg) if cfg is not None else None

    def _download_data(self):
        """Nothing to download (LAVIS's builders fetch here); :meth:`build` checks that the
        paths the config names exist."""

    def build(self):
        self.build_processors()
        build_info = self.config.build_info
        where = f"build_info.{self.media}.storage"
        if build_info.get(self.media) is None or build_info[self.media].get("storage") is None:
            raise KeyError(f"{where} (the local {self.media} folder) is required")
        vis_root = _local(build_info[self.media].storage, where)
        if not os.path.isdir(vis_root):
            raise FileNotFoundError(f"{self.media[:-1]} root not found: {vis_root} ({where})")
        policy = self.config.get(self.policy_key, "raise")
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
            dataset_cls = self.train_dataset_cls if is_train else self.eval_dataset_cls
            mode = "train" if is_train else "eval"
            datasets[split] = dataset_cls(
                vis_processor=self.vis_processors[mode],
                text_processor=self.text_processors[mode],
                ann_paths=paths,
                vis_root=vis_root,
                policy=policy,
            )
        return datasets


class LocalVideoTextBuilder(LocalRetrievalBuilder):
    """Local annotation files and a video root (``build_info.videos.storage``)."""

    train_dataset_cls = VideoTextTrainDataset
    eval_dataset_cls = VideoTextEvalDataset


@registry.register_builder("msrvtt_text_video")
class MSRVTTTextVideoBuilder(LocalVideoTextBuilder):
    """MSR-VTT: train on the 9k split, test on 1k-A
    (``tools/data/lavis/convert_video_text_annotations.py
    msrvtt``)."""

    DATASET_CONFIG_DICT = {"default": "msrvtt.yaml"}


@registry.register_builder("msvd_text_video")
class MSVDTextVideoBuilder(LocalVideoTextBuilder):
    """MSVD: the standard 1200 / 100 / 670 split, every caption."""

    DATASET_CONFIG_DICT = {"default": "msvd.yaml"}


@registry.register_builder("didemo_text_video")
class DiDeMoTextVideoBuilder(LocalVideoTextBuilder):
    """DiDeMo: paragraph-to-video (all of a video's descriptions joined, as CLIP4Clip)."""

    DATASET_CONFIG_DICT = {"default": "didemo.yaml"}


@registry.register_builder("activitynet_text_video")
class ActivityNetTextVideoBuilder(LocalVideoTextBuilder):
    """ActivityNet Captions: paragraph-to-video, train on ``train.json``, test on ``val_1.json``
    (CLIP4Clip's protocol; ``tools/data/lavis/convert_video_text_annotations.py activitynet``)."""

    DATASET_CONFIG_DICT = {"default": "activitynet.yaml"}


@registry.register_builder("vatex_text_video")
class VATEXTextVideoBuilder(LocalVideoTextBuilder):
    """VATEX: English captions, split from id lists
    (``tools/data/lavis/convert_video_text_annotations.py
    vatex``)."""

    DATASET_CONFIG_DICT = {"default": "vatex.yaml"}


@registry.register_builder("embedded_text_video")
class EmbeddedTextVideoBuilder(LocalVideoTextBuilder):
    """The generated clips of ``tools/data/lavis/make_video_text_dataset.py``."""

    DATASET_CONFIG_DICT = {"default": "embedded.yaml"}
