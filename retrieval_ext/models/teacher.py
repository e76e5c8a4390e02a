"""The interface a TeachCLIP teacher offers its student (arXiv 2308.01217).

A teacher is a retrieval model in its own right (``xclip_retrieval``, ``xpool_retrieval``)
that also implements ``teach(samples) -> TeacherOutput``: given the student's batch (the same
``video`` ``[B, T, 3, H, W]``, ``video_mask`` ``[B, T]`` and ``text_input`` strings), it
returns

- ``logits`` ``[B', B']``: its text-to-video logits over the batch, all-gathered under DDP
  (``B' = world_size * B``, texts in rows, in rank order, as the student's); and
- ``frame_relevance`` ``[B', T]``: for each matched pair ``i``, a distribution over the
  clip's real frames saying how much each frame matters to caption ``i``; zero on padded
  frames, rows summing to one.

Teachers are used frozen (``requires_grad_(False)`` and eval mode): ``teach`` runs under
``torch.no_grad()``. A batch holding a clip with no real frame is an error (the relevance
would be a softmax over nothing).
"""

from __future__ import annotations

import datetime
import logging
import time
from dataclasses import dataclass

from retrieval_ext.models.clip4clip import CLIP4ClipRetrieval

import torch
from transformers.utils import ModelOutput

FLOAT_BYTES = 4


@dataclass
class TeacherOutput(ModelOutput):
    """What :meth:`RetrievalTeacher.teach` returns (see the module docstring).

    Args:
        logits: ``[B', B']`` text-to-video logits (rows: texts).
        frame_relevance: ``[B', T]`` per matched pair, over real frames.
    """

    logits: torch.FloatTensor | None = None
    frame_relevance: torch.FloatTensor | None = None


class RetrievalTeacher:
    """The teacher interface as a mixin of a retrieval model: ``teach(samples) ->
    TeacherOutput`` (a base class rather than a ``typing.Protocol``, which needs Python
    3.8)."""

    def teach(self, samples: dict) -> TeacherOutput:
        raise NotImplementedError(f"{type(self).__name__} must define teach()")


def check_real_frames(video_mask: torch.Tensor) -> None:
    """Raise naming the rows of ``video_mask`` ``[B, T]`` that hold no real frame."""
    empty = (video_mask.sum(dim=1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"clip(s) at batch row(s) {empty} have no real frame (video_mask all zero): "
            "frame-level scores and relevance need at least one"
        )


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax of ``scores`` along ``dim`` over positions where ``mask`` is 1 (broadcast);
    exactly zero elsewhere."""
    keep = mask.bool()
    # the dtype's lowest finite value, not -inf: a position with nothing real (a padded
    # frame's column of words) then gives zeros, not NaNs that anomaly mode would flag
    lowest = torch.finfo(scores.dtype).min
    weights = torch.softmax(scores.masked_fill(~keep, lowest), dim=dim)
    return weights.masked_fill(~keep, 0.0)


class InteractionRetrieval(CLIP4ClipRetrieval):
    """A CLIP4Clip-based model whose text-video score is an interaction, not a dot product
    of two stored vectors: the gallery stores per-frame rows and every query is scored
    against every video, block by block, within a stated memory bound.

    Subclasses give :meth:`gallery_row` (what a video stores) and its :meth:`row_width`,
    :meth:`encode_queries` and its :meth:`query_width`, :meth:`score_gallery` and
    :meth:`block_bytes`; this class checks the bound and runs the evaluation.

    Args (beyond :class:`CLIP4ClipRetrieval`'s):
        eval_text_batch, eval_video_batch: Block of the evaluation scoring.
        eval_memory_limit_mb: Largest evaluation (gallery rows plus one scoring block)
            :meth:`compute_sim_matrix` accepts; above it, an error names the keys.
    """

    EVAL_VIDEO_BATCH = 64  # default of model.eval_video_batch

    def __init__(
        self,
        clip,
        eval_text_batch: int = 64,
        eval_video_batch: int | None = None,
        eval_memory_limit_mb: float = 4096.0,
        **clip4clip_kwargs,
    ):
        super().__init__(clip, **clip4clip_kwargs)
        self.max_frames = clip4clip_kwargs.get("max_frames", 12)
        self.eval_text_batch = eval_text_batch
        self.eval_video_batch = eval_video_batch or self.EVAL_VIDEO_BATCH
        self.eval_memory_limit_mb = eval_memory_limit_mb

    @classmethod
    def _build(cls, cfg, **extra):
        return super()._build(
            cfg,
            eval_text_batch=cfg.get("eval_text_batch", 64),
            eval_video_batch=cfg.get("eval_video_batch", cls.EVAL_VIDEO_BATCH),
            eval_memory_limit_mb=cfg.get("eval_memory_limit_mb", 4096.0),
            **extra,
        )

    def gallery_row(self, video: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        """``[B, W]``: what the gallery stores per video."""
        raise NotImplementedError(f"{type(self).__name__} must define gallery_row()")

    def row_width(self) -> int:
        """Floats per gallery row."""
        raise NotImplementedError(f"{type(self).__name__} must define row_width()")

    def encode_queries(self, texts: list[str]):
        """The query side of the interaction for ``texts``."""
        raise NotImplementedError(f"{type(self).__name__} must define encode_queries()")

    def score_gallery(self, queries, rows: torch.Tensor) -> torch.Tensor:
        """``[texts, videos]`` scores of encoded queries against gallery rows."""
        raise NotImplementedError(f"{type(self).__name__} must define score_gallery()")

    def block_bytes(self) -> int:
        """Peak bytes of one ``eval_text_batch`` x ``eval_video_batch`` scoring block."""
        raise NotImplementedError(f"{type(self).__name__} must define block_bytes()")

    def query_width(self) -> int:
        """Floats per encoded query."""
        raise NotImplementedError(f"{type(self).__name__} must define query_width()")

    def check_memory(self, num_videos: int, num_texts: int) -> float:
        """MB the evaluation needs: the gallery rows, the encoded queries, the score
        matrix and one scoring block."""
        gallery = num_videos * self.row_width() * FLOAT_BYTES
        gallery += num_texts * (self.query_width() + num_videos) * FLOAT_BYTES
        needed = (gallery + self.block_bytes()) / 2**20
        if needed > self.eval_memory_limit_mb:
            raise MemoryError(
                f"{type(self).__name__} evaluation needs {needed:.0f} MB for {num_videos} "
                f"videos and {num_texts} texts (gallery rows, queries and scores "
                f"{gallery / 2**20:.0f} MB + one scoring block "
                f"{self.block_bytes() / 2**20:.0f} MB) but model.eval_memory_limit_mb is "
                f"{self.eval_memory_limit_mb:.0f}: lower model.eval_text_batch / "
                "model.eval_video_batch, or raise the limit"
            )
        return needed

    @torch.no_grad()
    def compute_sim_matrix(self, data_loader, task_cfg=None):
        """Every caption against every video by the interaction (not a dot product),
        ``(sim_v2t, sim_t2v)`` as numpy arrays; refuses a gallery over the memory bound."""
        start = time.time()
        self.check_memory(len(data_loader.dataset), len(data_loader.dataset.text))
        rows = self.encode_video_loader(data_loader, rows_of=self.gallery_row).to(self.device)
        sim_t2v = self.score_gallery(self.encode_queries(list(data_loader.dataset.text)), rows)
        logging.info(
            "%s scored %d texts x %d videos in %s",
            type(self).__name__,
            sim_t2v.shape[0],
            sim_t2v.shape[1],
            datetime.timedelta(seconds=int(time.time() - start)),
        )
        return sim_t2v.t().numpy(), sim_t2v.numpy()
