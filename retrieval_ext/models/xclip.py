"""X-CLIP-style multi-grained retrieval (Ma et al., ACM MM 2022) as a LAVIS model.

On CLIP4Clip's encoders (the same CLIP, tokenizer and ``meanP`` / ``seqTransf`` temporal
module), the score of a text and a video averages four cross-grained similarities, each
aggregated by attention over its similarity matrix (as ``xuguohai/X-CLIP``'s
``modeling_xclip.py``):

- video-sentence: ``sentence @ W_global @ video``;
- video-word: each word against the video vector, words weighted by a softmax of those
  similarities at temperature ``attention_temperature`` (0.01), re-mixed by a learnable
  ``[L, L]`` matrix (``word_logit_weight``, starts at the identity);
- sentence-frame: the same over frames (``frame_logit_weight``);
- frame-word: the ``[words, frames]`` matrix through ``W_local``, aggregated over words
  then frames and over frames then words (four more learnable matrices), averaged.

The score is ``exp(logit_scale) * mean of the four`` (CLIP's logit scale). Frame features
are CLIP's per-frame features (X-CLIP's ``use_original_clip_for_frame_features``), the
video vector is CLIP4Clip's pooled one, the word features are every token's output.
Unlike the official code, padded words and frames are masked out of every softmax and sum
(``masked_softmax``; ``mask_padding: false`` scores them as the official code does, to
evaluate an official checkpoint as it was trained); ``learnable_aggregation: false``
freezes the matrices at the identity (plain softmax-weighted sums).

Retrieval cost: the score is not a dot product of two stored vectors. A gallery stores, per
video, the video vector and every frame feature (``(1 + F) * D`` floats), and each query is
scored against each video by the interaction above (``O(L * F * D)`` per pair);
:meth:`compute_sim_matrix` does that in blocks of ``eval_text_batch`` texts by
``eval_video_batch`` videos.
"""

from __future__ import annotations

from retrieval_ext.models.clip4clip import CLIP4ClipOutput, CLIP4ClipRetrieval
from retrieval_ext.models.common import all_gather_batch_with_grad
from retrieval_ext.models.teacher import (
    FLOAT_BYTES,
    InteractionRetrieval,
    RetrievalTeacher,
    TeacherOutput,
    check_real_frames,
    masked_softmax,
)

import torch
import torch.nn.functional as F
from lavis.common.registry import registry
from omegaconf import OmegaConf
from torch import nn

FRAME_FEATURES = ("clip", "temporal")


def attend(
    scores: torch.Tensor, mask: torch.Tensor, dim: int, mix: torch.Tensor, temperature: float
) -> torch.Tensor:
    """X-CLIP's attention over a similarity matrix, masked: ``sum_i w_i * s_i`` along
    ``dim`` with ``w = (softmax(s / temperature) @ mix) * mask``.

    Args:
        scores: Similarities; ``dim`` runs over ``n`` words or frames.
        mask: 1 for real positions, broadcastable to ``scores``.
        mix: ``[n', n']`` learnable re-mixing matrix (``n' >= n``; its top-left block).
    """
    n = scores.shape[dim]
    weights = masked_softmax(scores / temperature, mask, dim)
    weights = torch.movedim(torch.movedim(weights, dim, -1) @ mix[:n, :n], -1, dim)
    keep = mask.to(scores.dtype)
    return (weights * keep * scores.masked_fill(~mask.bool(), 0.0)).sum(dim)


class XCLIPInteraction(nn.Module):
    """The four cross-grained similarities and their learnable aggregation matrices (the
    official parameter names). Only this module scores pairs: a gallery can be scored with
    it alone (as a cost benchmark does).

    Args:
        dim: Feature width D.
        max_words: Token positions L of a caption (the tokenizer's ``max_txt_len``).
        max_frames: Frames F of a clip.
        attention_temperature: Softmax temperature of every aggregation (X-CLIP: 0.01).
        learnable_aggregation: Train the matrices (X-CLIP) or keep them at the identity.
        mask_padding: Leave padded words and frames out (default), or score them as the
            official code does (to evaluate an official checkpoint as it was trained).
    """

    def __init__(
        self,
        dim: int,
        max_words: int,
        max_frames: int,
        attention_temperature: float = 0.01,
        learnable_aggregation: bool = True,
        mask_padding: bool = True,
    ):
        super().__init__()
        self.attention_temperature = attention_temperature
        self.mask_padding = mask_padding
        shapes = {
            "global_mat_weight": dim,
            "word_logit_weight": max_words,
            "frame_logit_weight": max_frames,
            "local_mat_weight": dim,
            "frame_mat_weight": max_frames,
            "word_mat_weight": max_words,
            "frame_mat_weight2": max_frames,
            "word_mat_weight2": max_words,
        }
        for name, size in shapes.items():
            self.register_parameter(
                name, nn.Parameter(torch.eye(size), requires_grad=learnable_aggregation)
            )

    def forward(
        self,
        sentence: torch.Tensor,
        words: torch.Tensor,
        word_mask: torch.Tensor,
        video: torch.Tensor,
        frames: torch.Tensor,
        frame_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Mean of the four similarities, ``[Nt, Nv]`` (no logit scale).

        Args:
            sentence: ``[Nt, D]``, words ``[Nt, L, D]``, word_mask ``[Nt, L]``: normalised.
            video: ``[Nv, D]``, frames ``[Nv, F, D]``, frame_mask ``[Nv, F]``: normalised.
        """
        tau = self.attention_temperature
        wmask, fmask = word_mask.bool(), frame_mask.bool()
        if not self.mask_padding:  # the official code scores padding too
            wmask, fmask = torch.ones_like(wmask), torch.ones_like(fmask)
        video_sentence = sentence @ self.global_mat_weight @ video.t()
        # [Nt, L, Nv]: each word against each video vector, aggregated over words
        word_video = torch.einsum("tld,vd->tlv", words, video)
        video_word = attend(word_video, wmask[:, :, None], 1, self.word_logit_weight, tau)
        # [Nt, Nv, F]: the sentence against each frame, aggregated over frames
        sentence_frames = torch.einsum("td,vfd->tvf", sentence, frames)
        sentence_frame = attend(sentence_frames, fmask[None], -1, self.frame_logit_weight, tau)
        # [Nt, L, Nv, F]: every word against every frame
        fine = torch.einsum("tld,de,vfe->tlvf", words, self.local_mat_weight, frames)
        fine_mask = wmask[:, :, None, None] & fmask[None, None]
        word_level = attend(fine, fine_mask, 1, self.word_mat_weight, tau)  # [Nt, Nv, F]
        frame_level = attend(fine, fine_mask, -1, self.frame_mat_weight, tau)  # [Nt, L, Nv]
        sentence_to_frames = attend(word_level, fmask[None], -1, self.frame_mat_weight2, tau)
        video_to_words = attend(frame_level, wmask[:, :, None], 1, self.word_mat_weight2, tau)
        frame_word = (sentence_to_frames + video_to_words) / 2
        return (video_sentence + video_word + sentence_frame + frame_word) / 4

    def block_bytes(self, texts: int, words: int, videos: int, frames: int) -> int:
        """Peak bytes of one ``forward`` block: the ``[texts, L, videos, F]`` word-frame
        matrix and the four tensors of that size the two aggregations make."""
        return 5 * FLOAT_BYTES * texts * words * videos * frames


@registry.register_model("xclip_retrieval")
class XCLIPRetrieval(InteractionRetrieval, RetrievalTeacher):
    """X-CLIP-style retrieval (see the module docstring); a TeachCLIP teacher.

    Args (beyond :class:`CLIP4ClipRetrieval`'s):
        attention_temperature: Softmax temperature of the aggregations (0.01).
        learnable_aggregation: Train the aggregation matrices (X-CLIP) or fix them.
        frame_features: ``clip`` (CLIP's per-frame features, X-CLIP's recommendation) or
            ``temporal`` (after the temporal module) for the frame-level similarities.
        relevance_temperature: Temperature of the frame-text relevance a student is taught
            (TeachCLIP: 1.0, a softmax of cosines).
        mask_padding: Leave padded words and frames out of the scores (default; the
            frame relevance always does).
        eval_*: The evaluation's blocks and memory bound (:class:`InteractionRetrieval`).
    """

    PRETRAINED_MODEL_CONFIG_DICT = {
        "seqTransf": "xclip_seqTransf.yaml",
        "meanP": "xclip_meanP.yaml",
    }
    AGGREGATION_MATRICES = (
        "global_mat_weight",
        "word_logit_weight",
        "frame_logit_weight",
        "local_mat_weight",
        "frame_mat_weight",
        "word_mat_weight",
        "frame_mat_weight2",
        "word_mat_weight2",
    )
    # xuguohai/X-CLIP: CLIP4Clip's names plus the matrices at the top level
    OFFICIAL_PREFIXES = {
        **CLIP4ClipRetrieval.OFFICIAL_PREFIXES,
        **{name: f"interaction.{name}" for name in AGGREGATION_MATRICES},
    }
    OFFICIAL_MARKERS = (*CLIP4ClipRetrieval.OFFICIAL_MARKERS, *AGGREGATION_MATRICES)

    def __init__(
        self,
        clip,
        attention_temperature: float = 0.01,
        learnable_aggregation: bool = True,
        frame_features: str = "clip",
        relevance_temperature: float = 1.0,
        mask_padding: bool = True,
        **kwargs,
    ):
        super().__init__(clip, **kwargs)
        if frame_features not in FRAME_FEATURES:
            raise ValueError(
                f"frame_features must be one of {FRAME_FEATURES}, got {frame_features!r}"
            )
        self.frame_features = frame_features
        self.relevance_temperature = relevance_temperature
        self.interaction = XCLIPInteraction(
            dim=clip.visual.output_dim,
            max_words=self.max_txt_len,
            max_frames=self.max_frames,
            attention_temperature=attention_temperature,
            learnable_aggregation=learnable_aggregation,
            mask_padding=mask_padding,
        )

    # ------------------------------------------------------------------ features
    def video_side(self, video: torch.Tensor, video_mask: torch.Tensor):
        """``(video [B, D], frames [B, T, D], mask [B, T])``, features L2-normalised."""
        check_real_frames(video_mask)
        if video.shape[1] > self.max_frames:
            raise ValueError(f"{video.shape[1]} frames but max_frames is {self.max_frames}")
        frames = self.encode_frames(video)
        pooled = self.pool_frames(frames, video_mask)
        if self.frame_features == "temporal":
            frames = self.temporal_frame_features(frames, video_mask)
        return pooled, F.normalize(frames, dim=-1), video_mask

    def text_side(self, texts: list[str]):
        """``(sentence [N, D], words [N, L, D], word_mask [N, L])``, L2-normalised."""
        sentence, words, word_mask = self.encode_text_tokens(self.tokenize(texts).to(self.device))
        return F.normalize(sentence, dim=-1), F.normalize(words, dim=-1), word_mask

    def _gathered_logits(self, samples: dict):
        video, frames, frame_mask = self.video_side(samples["video"], samples["video_mask"])
        sentence, words, word_mask = self.text_side(samples["text_input"])
        video, frames, frame_mask, sentence, words, word_mask = all_gather_batch_with_grad(
            video, frames, frame_mask, sentence, words, word_mask
        )
        scores = self.interaction(sentence, words, word_mask, video, frames, frame_mask)
        return self.logit_scale() * scores, sentence, frames, frame_mask

    # ------------------------------------------------------------------ training
    def forward(self, samples: dict) -> CLIP4ClipOutput:
        """Symmetric cross-entropy over the (all-gathered) batch's X-CLIP logits."""
        return self.contrastive_output(self._gathered_logits(samples)[0])

    @torch.no_grad()
    def teach(self, samples: dict) -> TeacherOutput:
        """The teacher interface (:mod:`retrieval_ext.models.teacher`): the batch's
        logits, and per matched pair the softmax over real frames of
        cos(sentence, frame) / ``relevance_temperature``."""
        logits, sentence, frames, frame_mask = self._gathered_logits(samples)
        cosines = torch.einsum("bd,bfd->bf", sentence, frames)
        relevance = masked_softmax(cosines / self.relevance_temperature, frame_mask, dim=1)
        return TeacherOutput(logits=logits, frame_relevance=relevance)

    # ------------------------------------------------------------------ evaluation
    def gallery_row(self, video: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        """Per video: the pooled vector, ``max_frames`` frame features (zero-padded) and
        the frame mask."""
        pooled, frames, mask = self.video_side(video, video_mask)
        pad = self.max_frames - frames.shape[1]  # every row the same width
        frames = F.pad(frames, (0, 0, 0, pad))
        mask = F.pad(mask, (0, pad))
        return torch.cat([pooled, frames.flatten(1), mask.to(pooled.dtype)], dim=1)

    def row_width(self) -> int:
        return (1 + self.max_frames) * self.clip.visual.output_dim + self.max_frames

    def query_width(self) -> int:
        return (1 + self.max_txt_len) * self.clip.visual.output_dim + self.max_txt_len

    def block_bytes(self) -> int:
        return self.interaction.block_bytes(
            self.eval_text_batch, self.max_txt_len, self.eval_video_batch, self.max_frames
        )

    def encode_queries(self, texts: list[str]):
        sides = [
            self.text_side(texts[i : i + self.eval_text_batch])
            for i in range(0, len(texts), self.eval_text_batch)
        ]
        return tuple(torch.cat([side[part] for side in sides]) for part in range(3))

    @torch.no_grad()
    def score_gallery(self, queries, rows: torch.Tensor) -> torch.Tensor:
        """``[texts, videos]`` X-CLIP scores of encoded queries against gallery rows, in
        blocks of ``eval_text_batch`` x ``eval_video_batch``."""
        sentence, words, word_mask = queries
        dim, frames = self.clip.visual.output_dim, self.max_frames
        video = rows[:, :dim]
        frame_feats = rows[:, dim : dim + frames * dim].view(-1, frames, dim)
        frame_mask = rows[:, dim + frames * dim :].round().long()
        sim = torch.empty(sentence.shape[0], video.shape[0])
        for t in range(0, sentence.shape[0], self.eval_text_batch):
            ts = slice(t, t + self.eval_text_batch)
            for v in range(0, video.shape[0], self.eval_video_batch):
                vs = slice(v, v + self.eval_video_batch)
                sim[ts, vs] = self.interaction(
                    sentence[ts], words[ts], word_mask[ts], video[vs], frame_feats[vs],
                    frame_mask[vs],
                ).cpu()  # fmt: skip
        return sim

    # ------------------------------------------------------------------ config
    @classmethod
    def from_config(cls, cfg=None):
        cfg = cfg if cfg is not None else OmegaConf.create()
        return cls._build(
            cfg,
            attention_temperature=cfg.get("attention_temperature", 0.01),
            learnable_aggregation=cfg.get("learnable_aggregation", True),
            frame_features=cfg.get("frame_features", "clip"),
            relevance_temperature=cfg.get("relevance_temperature", 1.0),
            mask_padding=cfg.get("mask_padding", True),
        )
