"""The ``text_video_retrieval`` task: CLIP4Clip-style metrics, selection on text-to-video.

LAVIS's ``retrieval`` task reports R@1/5/10 only and selects checkpoints on the
video(image)-to-text mean. Text-to-video papers report R@1/5/10/50, median and mean rank in
both directions, and select on text-to-video; several captions per video are the rule.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np
from lavis.common.dist_utils import is_main_process
from lavis.common.registry import registry
from lavis.tasks.retrieval import RetrievalTask

from plugins.compat import lavis_lookup

RECALL_AT = (1, 5, 10, 50)
SELECT_ON = ("t2v", "v2t", "both")


def _rank_of(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of ``targets[i]`` in row ``i`` of ``scores`` (descending; ties are
    broken by index, as a stable sort would)."""
    rows = np.arange(scores.shape[0])
    target_scores = scores[rows, targets][:, None]
    columns = np.arange(scores.shape[1])[None, :]
    ahead = (scores > target_scores) | ((scores == target_scores) & (columns < targets[:, None]))
    return ahead.sum(axis=1)


def _summary(ranks: np.ndarray, prefix: str) -> dict:
    out = {f"{prefix}_r{k}": 100.0 * float(np.mean(ranks < k)) for k in RECALL_AT}
    # CLIP4Clip's convention (metrics.py): the median of the 0-based ranks, plus one, so an
    # even count can give a half rank
    out[f"{prefix}_medr"] = float(np.median(ranks)) + 1
    out[f"{prefix}_meanr"] = float(np.mean(ranks)) + 1
    out[f"{prefix}_sum_r"] = out[f"{prefix}_r1"] + out[f"{prefix}_r5"] + out[f"{prefix}_r10"]
    return out


def retrieval_metrics(sim_t2v: np.ndarray, txt2video: dict, video2txt: dict) -> dict:
    """Recall@K (percent), median and mean rank (1-based), both directions.

    Args:
        sim_t2v: ``[texts, videos]`` scores.
        txt2video: text index -> its video index.
        video2txt: video index -> its text indices; a video's rank is its best caption's.
    """
    sim_t2v = np.asarray(sim_t2v, dtype=np.float64)
    num_texts, num_videos = sim_t2v.shape
    if len(txt2video) != num_texts or len(video2txt) != num_videos:
        raise ValueError(
            f"score matrix is {num_texts} texts x {num_videos} videos but the ground truth "
            f"has {len(txt2video)} texts and {len(video2txt)} videos"
        )
    t2v = _rank_of(sim_t2v, np.array([txt2video[i] for i in range(num_texts)]))
    sim_v2t = sim_t2v.T
    v2t = np.empty(num_videos, dtype=np.int64)
    for video, texts in video2txt.items():
        texts = np.asarray(texts)
        v2t[video] = _rank_of(sim_v2t[[video] * len(texts)], texts).min()
    return {**_summary(t2v, "t2v"), **_summary(v2t, "v2t")}


@registry.register_task("text_video_retrieval")
class TextVideoRetrievalTask(RetrievalTask):
    """Text-video retrieval: ``run.select_on`` (``t2v``, default; ``v2t``; ``both``) picks the
    direction whose R@1+R@5+R@10 becomes ``agg_metrics``, which the runner maximises."""

    def __init__(self, cfg):
        super().__init__(cfg)
        self.select_on = cfg.get("select_on", "t2v")
        if self.select_on not in SELECT_ON:
            raise ValueError(f"run.select_on must be one of {SELECT_ON}, got {self.select_on!r}")

    def build_model(self, cfg):
        return lavis_lookup("model", cfg.model_cfg.arch).from_config(cfg.model_cfg)

    def build_datasets(self, cfg):
        if not cfg.datasets_cfg:
            raise ValueError("the config's 'datasets' section is empty")
        return {
            name: lavis_lookup("builder", name)(cfg.datasets_cfg[name]).build_datasets()
            for name in cfg.datasets_cfg
        }

    def evaluation(self, model, data_loader, **kwargs):
        _, sim_t2v = model.compute_sim_matrix(data_loader, task_cfg=self.cfg)
        if not is_main_process():
            return None
        dataset = data_loader.dataset
        metrics = retrieval_metrics(sim_t2v, dataset.txt2video, dataset.video2txt)
        if self.select_on == "both":
            metrics["agg_metrics"] = (metrics["t2v_sum_r"] + metrics["v2t_sum_r"]) / 2
        else:
            metrics["agg_metrics"] = metrics[f"{self.select_on}_sum_r"]
        logging.info(metrics)
        output_dir = registry.get_path("output_dir")
        if output_dir is not None:
            with open(os.path.join(output_dir, "evaluate.txt"), "a") as f:
                f.write(json.dumps(metrics) + "\n")
        return metrics
