"""The ``image_text_retrieval`` task: LAVIS's metric names, selection on both directions,
several score sets of one model.

LAVIS's ``retrieval`` task reports ``txt_r1/5/10`` (image-to-text), ``img_r1/5/10``
(text-to-image), their means and ``r_mean``, but selects checkpoints on the image-to-text
mean only. This task reports the same names and selects on ``r_mean``, the mean recall of
both directions. It also scores one model several ways (``run.score_sets``):

- ``itc``: the CLS-only dual encoder, cosine of the projected, normalised [CLS] embeddings
  of each side (ALBEF/BLIP's contrastive head): every image and caption is encoded once;
- any other name: the model's own ``compute_sim_matrix`` (for ALBEF, ``itm_rerank``: the
  ITM score of the fusion encoder added to the ITC score over the top ``k_test``
  candidates, LAVIS's re-rank). A model may return ``{name: (i2t, t2i)}`` to offer several.

The set named by ``run.select_on`` gets LAVIS's plain names and gives ``agg_metrics``; every
other set's metrics are prefixed with its name (``itc_txt_r1``, ``itc_r_mean``...).
"""

from __future__ import annotations

import json
import logging
import os

from retrieval_ext.tasks.base import RegistryRetrievalTask

import numpy as np
import torch
import torch.nn.functional as F
from lavis.common.dist_utils import is_main_process
from lavis.common.registry import registry
from omegaconf import OmegaConf
from torch.utils.data import DistributedSampler

RECALL_AT = (1, 5, 10)
ITC = "itc"


def _ranks(scores: np.ndarray, positives: list[list[int]]) -> np.ndarray:
    """0-based rank of each row's best positive (descending scores; ties are broken by
    index, as a stable sort would)."""
    ranks = np.empty(len(positives), dtype=np.int64)
    columns = np.arange(scores.shape[1])
    for row, targets in enumerate(positives):
        best = len(columns)
        for target in targets:
            value = scores[row, target]
            ahead = (scores[row] > value) | ((scores[row] == value) & (columns < target))
            best = min(best, int(ahead.sum()))
        ranks[row] = best
    return ranks


def image_text_metrics(scores_i2t, scores_t2i, txt2img: dict, img2txt: dict) -> dict:
    """LAVIS's retrieval metrics (percent): ``txt_r*`` image-to-text (an image's rank is its
    best caption's), ``img_r*`` text-to-image, their means and ``r_mean``."""
    scores_i2t = np.asarray(scores_i2t, dtype=np.float64)
    scores_t2i = np.asarray(scores_t2i, dtype=np.float64)
    num_images, num_texts = len(img2txt), len(txt2img)
    if scores_i2t.shape != (num_images, num_texts) or scores_t2i.shape != (num_texts, num_images):
        raise ValueError(
            f"score matrices are i2t {scores_i2t.shape} and t2i {scores_t2i.shape}; the ground "
            f"truth has {num_images} images and {num_texts} texts"
        )
    i2t = _ranks(scores_i2t, [list(img2txt[i]) for i in range(num_images)])
    t2i = _ranks(scores_t2i, [[txt2img[t]] for t in range(num_texts)])
    out = {}
    for prefix, ranks in (("txt", i2t), ("img", t2i)):
        for k in RECALL_AT:
            out[f"{prefix}_r{k}"] = 100.0 * float(np.mean(ranks < k))
        out[f"{prefix}_r_mean"] = sum(out[f"{prefix}_r{k}"] for k in RECALL_AT) / len(RECALL_AT)
    out["r_mean"] = (out["txt_r_mean"] + out["img_r_mean"]) / 2
    return out


def itc_text_features(model, texts: list[str]):
    """``(tokens at max_txt_len, normalised [CLS] features)`` of an ALBEF/BLIP-style text
    encoder: the text side of ITC."""
    tokens = model.tokenizer(
        texts,
        padding="max_length",
        truncation=True,
        max_length=int(model.max_txt_len),
        return_tensors="pt",
    ).to(model.device)
    hidden = model.text_encoder.forward_text(tokens).last_hidden_state
    return tokens, F.normalize(model.text_proj(hidden[:, 0, :]), dim=-1)


@torch.no_grad()
def itc_sim_matrix(model, data_loader, text_batch_size: int = 256):
    """CLS-only dual-encoder scores of an ALBEF/BLIP-style model: ``(i2t, t2i)`` cosines of
    ``vision_proj`` / ``text_proj`` of each side's first token."""
    texts = data_loader.dataset.text
    text_embeds = [
        itc_text_features(model, texts[start : start + text_batch_size])[1]
        for start in range(0, len(texts), text_batch_size)
    ]
    image_embeds = []
    for samples in data_loader:
        features = model.visual_encoder.forward_features(samples["image"].to(model.device))
        image_embeds.append(F.normalize(model.vision_proj(features[:, 0, :]), dim=-1))
    sims = torch.cat(image_embeds) @ torch.cat(text_embeds).t()
    return sims.cpu().numpy(), sims.t().cpu().numpy()


@registry.register_task("image_text_retrieval")
class ImageTextRetrievalTask(RegistryRetrievalTask):
    """Image-text retrieval. ``run`` keys: ``k_test`` (re-rank depth, capped at the
    gallery), ``score_sets`` (default: the model's own scores, named ``model``),
    ``select_on`` (default: the first score set)."""

    def __init__(self, cfg):
        super().__init__(cfg)
        sets = cfg.get("score_sets", None)
        self.score_sets = list(sets) if sets else ["model"]
        self.select_on = cfg.get("select_on", None) or self.score_sets[0]
        if self.select_on not in self.score_sets:
            raise ValueError(
                f"run.select_on={self.select_on!r} is not one of run.score_sets={self.score_sets}"
            )

    def _model_scores(self, model, data_loader) -> dict:
        dataset = data_loader.dataset
        # a k_test above the gallery or the caption count makes LAVIS's topk fail
        k_test = min(int(self.cfg.get("k_test", 256)), len(dataset.image), len(dataset.text))
        task_cfg = OmegaConf.merge(self.cfg, {"k_test": k_test})
        scores = model.compute_sim_matrix(data_loader, task_cfg=task_cfg)
        names = [s for s in self.score_sets if s != ITC]
        if isinstance(scores, dict):
            absent = [name for name in names if name not in scores]
            if absent:
                raise KeyError(
                    f"run.score_sets names {absent}, but the model's compute_sim_matrix returns "
                    f"{sorted(scores)}"
                )
            return {name: scores[name] for name in names}
        if len(names) != 1:
            raise ValueError(
                f"the model returns one score set, but run.score_sets names {names} besides '{ITC}'"
            )
        return {names[0]: scores}

    def evaluation(self, model, data_loader, **kwargs):
        if isinstance(getattr(data_loader, "sampler", None), DistributedSampler):
            # LAVIS's ALBEF/BLIP encode the gallery they are given and index it as the
            # whole: a shard would silently score the wrong images
            raise ValueError(
                "image_text_retrieval needs every process to see the whole gallery: set "
                "run.use_dist_eval_sampler: false"
            )
        score_sets = {}
        if any(s != ITC for s in self.score_sets):  # every process: LAVIS all-reduces
            score_sets.update(self._model_scores(model, data_loader))
        if not is_main_process():
            return None
        if ITC in self.score_sets:
            score_sets[ITC] = itc_sim_matrix(model, data_loader)
        dataset = data_loader.dataset
        metrics = {}
        for name in self.score_sets:
            values = image_text_metrics(*score_sets[name], dataset.txt2img, dataset.img2txt)
            prefix = "" if name == self.select_on else f"{name}_"
            metrics.update({f"{prefix}{key}": value for key, value in values.items()})
        metrics["agg_metrics"] = metrics["r_mean"]
        logging.info(metrics)
        output_dir = registry.get_path("output_dir")
        if output_dir is not None:
            with open(os.path.join(output_dir, "evaluate.txt"), "a") as f:
                f.write(json.dumps(metrics) + "\n")
        return metrics
