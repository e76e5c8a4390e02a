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

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch
from transformers.utils import ModelOutput


@dataclass
class TeacherOutput(ModelOutput):
    """What :meth:`RetrievalTeacher.teach` returns (see the module docstring).

    Args:
        logits: ``[B', B']`` text-to-video logits (rows: texts).
        frame_relevance: ``[B', T]`` per matched pair, over real frames.
    """

    logits: torch.FloatTensor | None = None
    frame_relevance: torch.FloatTensor | None = None


@runtime_checkable
class RetrievalTeacher(Protocol):
    """Anything with ``teach(samples) -> TeacherOutput``."""

    def teach(self, samples: dict) -> TeacherOutput: ...


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
    weights = torch.softmax(scores.masked_fill(~keep, float("-inf")), dim=dim)
    return weights.masked_fill(~keep, 0.0)
