"""The ``text_video_retrieval`` task: CLIP4Clip's metrics, selection on text-to-video.

LAVIS's ``retrieval`` task reports R@1/5/10 only, selects checkpoints on the
video(image)-to-text mean, and ranks a video's best caption among all captions.
Text-to-video papers (CLIP4Clip, X-CLIP, TeachCLIP) report R@1/5/10/50, median and mean
rank in both directions, select on text-to-video, and with several captions per video rank
*videos* for video-to-text (each video scored by its best caption). That is the default
here, so numbers compare with theirs; LAVIS's convention is an option.

When the annotations say which frames show what the captions say (``content_frames``, as
the fine-grained embedded dataset writes them), the metrics also say where the models put
their frame weight (:func:`frame_weight_metrics`), in percent: ``afa_content_share`` (a
TeachCLIP student's AFA pooling weight on content frames), ``teacher_content_share`` (a
teacher's frame-text relevance for each clip's own captions, as its ``teach`` gives it to
the fine loss), ``teacher_<label>_content_share`` (each teacher of a student), and
``content_share_chance`` (content frames over real frames: what uniform weights give).
"""

from __future__ import annotations

import json
import logging
import os

from retrieval_ext.models.common import local_batch
from retrieval_ext.tasks.base import RegistryRetrievalTask

import numpy as np
import torch
import torch.distributed as dist
from lavis.common.dist_utils import is_dist_avail_and_initialized, is_main_process
from lavis.common.registry import registry

RECALL_AT = (1, 5, 10, 50)
SELECT_ON = ("t2v", "v2t", "both")
CONVENTIONS = ("clip4clip", "lavis")


def rank_of(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """0-based rank of ``targets[i]`` in row ``i`` of ``scores`` (descending; ties are
    broken by index, as a stable sort would: CLIP4Clip's one-caption path ranks a tie in
    the target's favour and its several-caption path in argsort's order; with float scores
    ties are rare)."""
    rows = np.arange(scores.shape[0])
    target_scores = scores[rows, targets][:, None]
    columns = np.arange(scores.shape[1])[None, :]
    ahead = (scores > target_scores) | ((scores == target_scores) & (columns < targets[:, None]))
    return ahead.sum(axis=1)


def rank_summary(ranks: np.ndarray, prefix: str, lower_median: bool = False) -> dict:
    """Recall@K (percent), median and mean rank (1-based) of 0-based ``ranks``.

    The median is CLIP4Clip's: ``np.median(ranks) + 1`` (an even count can give a half
    rank), or with ``lower_median`` the lower middle value, as ``torch.median`` gives in
    CLIP4Clip's several-captions-per-video text-to-video path.
    """
    ranks = np.asarray(ranks)
    out = {f"{prefix}_r{k}": 100.0 * float(np.mean(ranks < k)) for k in RECALL_AT}
    if lower_median:
        out[f"{prefix}_medr"] = float(np.sort(ranks)[(len(ranks) - 1) // 2]) + 1
    else:
        out[f"{prefix}_medr"] = float(np.median(ranks)) + 1
    out[f"{prefix}_meanr"] = float(np.mean(ranks)) + 1
    out[f"{prefix}_sum_r"] = out[f"{prefix}_r1"] + out[f"{prefix}_r5"] + out[f"{prefix}_r10"]
    return out


def video_caption_scores(sim_t2v: np.ndarray, video2txt: dict) -> np.ndarray:
    """``[videos, videos]``: entry ``(v, w)`` is the best score of video ``v`` with any
    caption of video ``w`` (CLIP4Clip's ``tensor_video_to_text_sim``)."""
    num_videos = sim_t2v.shape[1]
    grouped = np.empty((num_videos, num_videos), dtype=sim_t2v.dtype)
    for video in range(num_videos):
        grouped[:, video] = sim_t2v[np.asarray(video2txt[video])].max(axis=0)
    return grouped


def retrieval_metrics(
    sim_t2v: np.ndarray, txt2video: dict, video2txt: dict, convention: str = "clip4clip"
) -> dict:
    """Recall@K (percent), median and mean rank (1-based), both directions.

    Args:
        sim_t2v: ``[texts, videos]`` scores.
        txt2video: text index -> its video index.
        video2txt: video index -> its text indices.
        convention: how several captions per video count (the two agree when every video
            has one caption):

            - ``"clip4clip"`` (CLIP4Clip, TeachCLIP, X-CLIP): video-to-text scores each
              video against each *video's* captions by their best one and ranks the
              videos; text-to-video's median is the lower middle rank (``torch.median``).
            - ``"lavis"`` (LAVIS's ``retrieval`` task, COCO/Flickr practice): a video's
              rank is its best caption's rank among all captions; medians are
              ``np.median``.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"metrics convention must be one of {CONVENTIONS}, got {convention!r}")
    sim_t2v = np.asarray(sim_t2v, dtype=np.float64)
    num_texts, num_videos = sim_t2v.shape
    if len(txt2video) != num_texts or len(video2txt) != num_videos:
        raise ValueError(
            f"score matrix is {num_texts} texts x {num_videos} videos but the ground truth "
            f"has {len(txt2video)} texts and {len(video2txt)} videos"
        )
    t2v = rank_of(sim_t2v, np.array([txt2video[i] for i in range(num_texts)]))
    several = any(len(texts) > 1 for texts in video2txt.values())
    if convention == "clip4clip":
        v2t = rank_of(video_caption_scores(sim_t2v, video2txt), np.arange(num_videos))
        lower_median = several
    else:
        sim_v2t = sim_t2v.T
        v2t = np.empty(num_videos, dtype=np.int64)
        for video, texts in video2txt.items():
            texts = np.asarray(texts)
            v2t[video] = rank_of(sim_v2t[[video] * len(texts)], texts).min()
        lower_median = False
    return {**rank_summary(t2v, "t2v", lower_median), **rank_summary(v2t, "v2t")}


def content_mask(content_frames: list[list[int]], video_mask: np.ndarray, videos: list[str]):
    """``[B, F]`` bool: the content frames of each clip of a batch. The positions index the
    sampled frames, which are the clip's own frames when the clip has no more frames than
    the processor samples (the fine-grained clips have exactly ``n_frms``)."""
    video_mask = np.asarray(video_mask).astype(bool)
    mask = np.zeros_like(video_mask)
    for row, frames in enumerate(content_frames):
        real = int(video_mask[row].sum())
        if max(frames) >= real:
            raise ValueError(
                f"{videos[row]}: content_frames {frames} name frame {max(frames)} but only {real} "
                "frames were sampled; content frame positions need clips of at most the "
                "processor's n_frms frames"
            )
        mask[row, frames] = True
    return mask


def content_share(weights, content) -> np.ndarray:
    """Per row of ``weights`` ``[N, F]`` (non-negative), the share of its sum on the frames
    where ``content`` ``[N, F]`` is true, in percent."""
    weights = np.asarray(weights, dtype=np.float64)
    return 100.0 * (weights * content).sum(axis=1) / weights.sum(axis=1)


def _teachers_of(model) -> dict:
    """``{metric prefix: model with teach()}``: the model itself if it teaches, and a
    student's teachers by label."""
    teachers = {"teacher": model} if hasattr(model, "teach") else {}
    for label, teacher in getattr(model, "teachers", {}).items():
        teachers[f"teacher_{label}"] = teacher
    return teachers


@torch.no_grad()
def frame_weight_metrics(model, data_loader) -> dict:
    """Where ``model`` puts its frame weight on an evaluation loader whose dataset entries
    carry ``content_frames``: the mean over clips of the share (percent) on content frames
    of the AFA pooling weights (``model.frame_weights``, when it has AFA) and of each
    teacher's frame-text relevance for the clip's own captions (mean over its captions),
    and the chance share (uniform weights). ``{}`` when the entries carry no positions."""
    dataset = data_loader.dataset
    entries = getattr(dataset, "entries", [])  # a dataset without entries has no positions
    if not any("content_frames" in entry for entry in entries):
        return {}
    missing = [entry["video"] for entry in entries if "content_frames" not in entry]
    if missing:
        raise ValueError(
            f"{len(missing)} annotation entries have no content_frames while others do "
            f"(first: {missing[0]}); give every entry its content frame positions or none"
        )
    teachers = _teachers_of(model)
    sums = dict.fromkeys(["content_share_chance", *(f"{t}_content_share" for t in teachers)], 0.0)
    count = 0
    for samples in data_loader:
        video = samples["video"].to(model.device)
        video_mask = samples["video_mask"].to(model.device)
        indices = samples["index"].tolist()
        content = content_mask(
            [entries[i]["content_frames"] for i in indices],
            video_mask.cpu().numpy(),
            [entries[i]["video"] for i in indices],
        )
        sums["content_share_chance"] += float(
            content_share(video_mask.cpu().numpy(), content).sum()
        )
        weights = (
            model.frame_weights(video, video_mask) if hasattr(model, "frame_weights") else None
        )
        if weights is not None:
            share = content_share(weights.cpu().numpy(), content).sum()
            sums["afa_content_share"] = sums.get("afa_content_share", 0.0) + float(share)
        rows = [row for row, i in enumerate(indices) for _ in dataset.video2txt[i]]
        texts = [dataset.text[t] for i in indices for t in dataset.video2txt[i]]
        for prefix, teacher in teachers.items():
            with local_batch():  # this process's clips only: shards differ in size
                relevance = teacher.teach(
                    {"video": video[rows], "video_mask": video_mask[rows], "text_input": texts}
                ).frame_relevance
            per_caption = content_share(relevance.cpu().numpy(), content[rows])
            per_clip = np.bincount(rows, per_caption) / np.bincount(rows)
            sums[f"{prefix}_content_share"] += float(per_clip.sum())
        count += len(indices)
    names = sorted(sums)
    totals = torch.tensor([sums[n] for n in names] + [count], dtype=torch.float64)
    if is_dist_avail_and_initialized():  # each process saw its shard of the gallery
        totals = totals.to(model.device)
        dist.all_reduce(totals)
        totals = totals.cpu()
    return {name: float(totals[i] / totals[-1]) for i, name in enumerate(names)}


@registry.register_task("text_video_retrieval")
class TextVideoRetrievalTask(RegistryRetrievalTask):
    """Text-video retrieval.

    ``run`` keys: ``select_on`` (``t2v``, default; ``v2t``; ``both``) picks the direction
    whose R@1+R@5+R@10 becomes ``agg_metrics``, which the runner maximises;
    ``metrics_convention`` (``clip4clip``, default; ``lavis``) says how several captions
    per video count (see :func:`retrieval_metrics`).
    """

    def __init__(self, cfg):
        super().__init__(cfg)
        self.select_on = cfg.get("select_on", "t2v")
        if self.select_on not in SELECT_ON:
            raise ValueError(f"run.select_on must be one of {SELECT_ON}, got {self.select_on!r}")
        self.convention = cfg.get("metrics_convention", "clip4clip")
        if self.convention not in CONVENTIONS:
            raise ValueError(
                f"run.metrics_convention must be one of {CONVENTIONS}, got {self.convention!r}"
            )

    def evaluation(self, model, data_loader, **kwargs):
        _, sim_t2v = model.compute_sim_matrix(data_loader, task_cfg=self.cfg)
        shares = frame_weight_metrics(model, data_loader)  # every process: it all-reduces
        if not is_main_process():
            return None
        dataset = data_loader.dataset
        metrics = retrieval_metrics(sim_t2v, dataset.txt2video, dataset.video2txt, self.convention)
        metrics.update(shares)
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
