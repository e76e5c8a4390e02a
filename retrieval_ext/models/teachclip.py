"""TeachCLIP (arXiv 2308.01217): a CLIP4Clip-cost student taught by frozen fine-grained
teachers, as a LAVIS retrieval model (``teachclip_retrieval``).

The student is CLIP4Clip (``meanP`` or ``seqTransf``, :mod:`retrieval_ext.models.clip4clip`)
whose frame pooling is Attentional frame-Feature Aggregation (AFA): a per-frame MLP
``Linear(d, d) - ReLU - Linear(d, 1)`` on the frame features after the temporal module
gives one text-agnostic logit per frame, and the video vector is
``normalize(sum_f softmax_f(logit_f / afa_temperature) * normalize(frame_f))``. Padded
frames are masked out of every softmax (the official code does not mask them). At
retrieval time the student stores one vector per video and scores by one dot product,
exactly as CLIP4Clip: nothing of AFA survives into the index.

Training (``forward``), over the batch all-gathered under DDP as CLIP4Clip's, with ``S`` the
student's text-to-video logits and, for every teacher ``k``, ``T_k`` its logits on the same
batch and ``r_k`` its frame-text relevance for matched pairs (:mod:`.teacher`):

- ``contrastive``: symmetric InfoNCE on ``S`` (the mean of both directions).
- ``coarse`` (per logit row, both directions summed, averaged over teachers):
  ``pear`` = ``1 - Pearson(softmax(S_i), softmax(T_i))``; ``ce`` = soft-target cross-entropy
  ``-sum_j softmax(T_i)_j log_softmax(S_i)_j``; ``l1`` = SmoothL1 between the logits (one
  term: it is symmetric). Rows are averaged; the official ``ce`` averages over the matrix
  entries instead (1/B of ours).
- ``fine`` (matched pairs, averaged over teachers): the AFA weights at temperature
  ``fine_temperature`` (1.0, not ``afa_temperature``), ``w`` ``[B, F]``, against ``r``:
  ``ce`` = mean over real frames of ``-r log w``; ``pear`` = ``1 - Pearson(w_i, r_i)`` over
  the real frames of row i; ``l1`` = SmoothL1 over real frames.
- ``loss = w_con * contrastive + w_coarse * coarse + w_fine * fine`` (``loss_weights``).
  The official weights follow the coarse loss: 1 / 10 / 1 with ``ce``, 0.2 / 1 / 2 with
  ``pear`` and ``l1``; keys the config does not set take them. Without teachers only the
  contrastive term is left, at weight 1 by default (CLIP4Clip's loss).

Teachers are LAVIS retrieval models with a ``teach`` method (``xclip_retrieval``,
``xpool_retrieval``), each built from its own LAVIS config and a local checkpoint
(``teachers`` in the model config), frozen: eval mode, ``requires_grad=False``, under
``no_grad``, in no optimiser group and left out of the student's checkpoints
(``checkpoint_exclude_prefixes``). They see the student's own frames and tokens.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from retrieval_ext.models.clip4clip import CLIP4ClipRetrieval
from retrieval_ext.models.common import all_gather_batch_with_grad
from retrieval_ext.models.teacher import TeacherOutput, check_real_frames, masked_softmax

import torch
import torch.nn.functional as F
from lavis.common.registry import registry
from omegaconf import DictConfig, OmegaConf
from torch import nn
from transformers.utils import ModelOutput

from plugins.compat.checkpoints import CheckpointLoadError

COARSE_LOSSES = ("pear", "ce", "l1")
FINE_LOSSES = ("ce", "pear", "l1")
LOSS_TERMS = ("contrastive", "coarse", "fine")
# the official weights per coarse loss (train.py picks them by its distill_method)
OFFICIAL_LOSS_WEIGHTS = {
    "ce": {"contrastive": 1.0, "coarse": 10.0, "fine": 1.0},
    "pear": {"contrastive": 0.2, "coarse": 1.0, "fine": 2.0},
    "l1": {"contrastive": 0.2, "coarse": 1.0, "fine": 2.0},
}
# without teachers the student is CLIP4Clip with AFA: InfoNCE alone, at CLIP4Clip's weight
UNTAUGHT_LOSS_WEIGHTS = {"contrastive": 1.0, "coarse": 0.0, "fine": 0.0}


def default_loss_weights(coarse_loss: str, taught: bool) -> dict[str, float]:
    """The weights a config's unset ``loss_weights`` keys take."""
    return dict(OFFICIAL_LOSS_WEIGHTS[coarse_loss] if taught else UNTAUGHT_LOSS_WEIGHTS)


@dataclass
class TeachCLIPOutput(ModelOutput):
    """What :meth:`TeachCLIPRetrieval.forward` returns.

    Args:
        loss: the weighted sum of the terms below.
        loss_contrastive: symmetric InfoNCE on the student's logits.
        loss_coarse: coarse-grained teaching, averaged over teachers (0 without any).
        loss_fine: fine-grained teaching, averaged over teachers (0 without any).
        logits: ``[texts, videos]`` student logits over the gathered batch.
        frame_weights: ``[videos, frames]`` AFA weights at ``fine_temperature``.
    """

    loss: torch.FloatTensor | None = None
    loss_contrastive: torch.FloatTensor | None = None
    loss_coarse: torch.FloatTensor | None = None
    loss_fine: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    frame_weights: torch.FloatTensor | None = None


class AttentionalFrameAggregation(nn.Module):
    """AFA's frame scorer: ``[B, F, D]`` frame features -> ``[B, F]`` logits, one per
    frame, from the frame alone (text-agnostic, so the video vector can be stored)."""

    def __init__(self, width: int):
        super().__init__()
        self.hidden = nn.Linear(width, width)
        self.logit = nn.Linear(width, 1)
        # the official init (CLIP4Clip's init_weights: N(0, 0.02), zero bias): near-equal
        # logits, so AFA starts as mean pooling. PyTorch's default init gives logits of
        # +-0.3, which softmax at 0.1 turns into one or two frames from the first step
        # (seen from scratch on the embedded clips: t2v R@1 7.6 against mean pooling's 32.6)
        for layer in (self.hidden, self.logit):
            nn.init.normal_(layer.weight, std=0.02)
            nn.init.zeros_(layer.bias)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.logit(F.relu(self.hidden(frames))).squeeze(-1)


def pearson_distance(p: torch.Tensor, q: torch.Tensor, mask: torch.Tensor | None = None):
    """``1 - Pearson(p_i, q_i)`` per row of ``[N, M]`` tensors, over the positions where
    ``mask`` is 1 (all when None). A row with no spread gives 1 (no correlation)."""
    keep = torch.ones_like(p) if mask is None else mask.to(p.dtype)
    count = keep.sum(dim=1, keepdim=True).clamp(min=1.0)
    p_c = (p - (p * keep).sum(1, keepdim=True) / count) * keep
    q_c = (q - (q * keep).sum(1, keepdim=True) / count) * keep
    norms = (p_c.norm(dim=1) * q_c.norm(dim=1)).clamp(min=1e-12)
    return 1.0 - (p_c * q_c).sum(dim=1) / norms


def coarse_teaching_loss(student: torch.Tensor, teacher: torch.Tensor, method: str):
    """Coarse-grained teaching of ``[texts, videos]`` student logits by a teacher's."""
    if method == "l1":
        return F.smooth_l1_loss(student, teacher)
    total = student.new_zeros(())
    for s, t in ((student, teacher), (student.t(), teacher.t())):  # t2v rows, then v2t
        if method == "pear":
            total = total + pearson_distance(s.softmax(-1), t.softmax(-1)).mean()
        else:  # ce
            total = total - (t.softmax(-1) * s.log_softmax(-1)).sum(-1).mean()
    return total


def fine_teaching_loss(
    afa_logits: torch.Tensor,
    relevance: torch.Tensor,
    video_mask: torch.Tensor,
    method: str,
    temperature: float,
):
    """Fine-grained teaching of the AFA frame weights ``[B, F]`` (from ``afa_logits`` at
    ``temperature``) by a teacher's frame-text relevance ``[B, F]``, over real frames."""
    keep = video_mask.bool()
    real = keep.sum().clamp(min=1)
    if method == "ce":
        scores = (afa_logits / temperature).masked_fill(~keep, torch.finfo(afa_logits.dtype).min)
        log_weights = scores.log_softmax(dim=1).masked_fill(~keep, 0.0)
        return -(relevance * log_weights).sum() / real
    weights = masked_softmax(afa_logits / temperature, video_mask, dim=1)
    if method == "pear":
        return pearson_distance(weights, relevance, video_mask).mean()
    elementwise = F.smooth_l1_loss(weights, relevance, reduction="none")
    return (elementwise * keep).sum() / real


def registered_teachers() -> list[str]:
    """Names of the registered LAVIS models that can teach (they define ``teach``)."""
    names = registry.list_models()
    return sorted(n for n in names if hasattr(registry.get_model_class(n), "teach"))


def build_teacher(label: str, spec, student_frames: int, student_words: int) -> nn.Module:
    """One frozen teacher from ``spec`` (``cfg_path``: its LAVIS config, whose ``model``
    section builds it; ``checkpoint``: its local weights; ``model_overrides``: optional
    keys merged over that model section, as ``--options model.<key>=...`` did when the
    teacher was trained; ``arch``: optional, must agree with the config's)."""
    where = f"model.teachers.{label}"
    if not isinstance(spec, (dict, DictConfig)):
        raise TypeError(f"{where}: expected a mapping with cfg_path and checkpoint")
    known = ("arch", "cfg_path", "checkpoint", "model_overrides")
    unknown = sorted(set(spec) - set(known))
    if unknown:
        raise KeyError(f"{where}: unknown key(s) {unknown}; expected some of {known}")
    if not spec.get("cfg_path"):
        raise KeyError(f"{where}.cfg_path: the teacher's LAVIS config is required")
    cfg_path = Path(spec["cfg_path"]).expanduser()
    if not cfg_path.is_file():
        raise FileNotFoundError(f"{where}.cfg_path: teacher config not found: {cfg_path}")
    model_cfg = OmegaConf.load(cfg_path).get("model")
    if model_cfg is None or "arch" not in model_cfg:
        raise KeyError(f"{cfg_path}: no model.arch (the teacher's LAVIS model section)")
    # the model keys the teacher was trained with beyond its file (its --options model.*)
    model_cfg = OmegaConf.merge(model_cfg, spec.get("model_overrides") or {})
    arch = spec.get("arch") or model_cfg.arch
    teachers = registered_teachers()
    if arch not in teachers:
        raise KeyError(
            f"{where}: unknown teacher {arch!r}; registered teachers (LAVIS models with "
            f"teach()): {teachers}"
        )
    if arch != model_cfg.arch:
        raise ValueError(f"{where}.arch is {arch!r} but {cfg_path} builds {model_cfg.arch!r}")
    model_cls = registry.get_model_class(arch)
    model_type = model_cfg.get("model_type") or next(iter(model_cls.PRETRAINED_MODEL_CONFIG_DICT))
    defaults = OmegaConf.load(model_cls.default_config_path(model_type)).model
    model_cfg = OmegaConf.merge(defaults, model_cfg)
    for key, student in (("max_frames", student_frames), ("max_txt_len", student_words)):
        if model_cfg.get(key) != student:  # it reads the student's own frames and tokens
            raise ValueError(
                f"{where}: teacher {cfg_path} has {key}={model_cfg.get(key)} but the student "
                f"has {student}; a teacher scores the student's own frames and tokens, so "
                "they must agree"
            )
    if not spec.get("checkpoint"):
        raise KeyError(f"{where}.checkpoint: a teacher needs its trained weights (a local file)")
    checkpoint = Path(spec["checkpoint"]).expanduser()
    if not checkpoint.is_file():
        raise FileNotFoundError(
            f"{where}.checkpoint: teacher checkpoint not found: {checkpoint} (local files only)"
        )
    # its own checkpoint, loaded as LAVIS loads a fine-tuned model (keys checked by name);
    # the CLIP architecture comes from it, so no OpenAI CLIP file is read
    model_cfg.load_finetuned, model_cfg.finetuned = True, str(checkpoint)
    try:
        teacher = model_cls.from_config(model_cfg)
    except CheckpointLoadError as error:
        raise error.for_key(f"{where}.checkpoint") from error
    except (KeyError, ValueError, FileNotFoundError) as error:
        raise type(error)(f"{where} ({arch}, {cfg_path}): {error}") from error
    teacher.requires_grad_(False)
    return teacher.eval()


@registry.register_model("teachclip_retrieval")
class TeachCLIPRetrieval(CLIP4ClipRetrieval):
    """The TeachCLIP student (see the module docstring).

    Args (beyond :class:`CLIP4ClipRetrieval`'s):
        afa: Pool frames by AFA (True) or by CLIP4Clip's mean (False).
        afa_temperature: Temperature of AFA's pooling softmax (0.1).
        fine_temperature: Temperature of the AFA weights taught by the fine loss (1.0).
        lr_scale_afa: AFA's learning rate relative to the new layers (10: 1e-3 at 1e-4).
        teachers: ``{label: teacher module}``, frozen here.
        coarse_loss, fine_loss: ``pear`` | ``ce`` | ``l1`` (defaults ``pear``, ``ce``).
        loss_weights: ``{"contrastive", "coarse", "fine"}`` weights; a term left out takes
            :func:`default_loss_weights` (the official ones for ``coarse_loss``, or
            contrastive 1 without teachers).
        logit_temperature: Student and teacher logits are divided by it before the
            contrastive and coarse losses (the official ``beta``, 1.0).
    """

    PRETRAINED_MODEL_CONFIG_DICT = {
        "seqTransf": "teachclip_seqTransf.yaml",
        "meanP": "teachclip_meanP.yaml",
    }
    # the teachers load from their own files (model.teachers), never from the student's
    checkpoint_exclude_prefixes = ("teachers.",)
    OFFICIAL_PREFIXES = {
        **CLIP4ClipRetrieval.OFFICIAL_PREFIXES,
        "frameLinear.": "afa.hidden.",
        "frameLinear2.": "afa.logit.",
    }
    OFFICIAL_MARKERS = (*CLIP4ClipRetrieval.OFFICIAL_MARKERS, "frameLinear.")

    def __init__(
        self,
        clip,
        afa: bool = True,
        afa_temperature: float = 0.1,
        fine_temperature: float = 1.0,
        lr_scale_afa: float = 10.0,
        teachers: dict[str, nn.Module] | None = None,
        coarse_loss: str = "pear",
        fine_loss: str = "ce",
        loss_weights: dict | None = None,
        logit_temperature: float = 1.0,
        **clip4clip_kwargs,
    ):
        super().__init__(clip, **clip4clip_kwargs)
        if coarse_loss not in COARSE_LOSSES:
            raise ValueError(f"coarse_loss must be one of {COARSE_LOSSES}, got {coarse_loss!r}")
        if fine_loss not in FINE_LOSSES:
            raise ValueError(f"fine_loss must be one of {FINE_LOSSES}, got {fine_loss!r}")
        weights = default_loss_weights(coarse_loss, taught=bool(teachers))
        for term, value in (loss_weights or {}).items():
            if term not in LOSS_TERMS:
                raise KeyError(f"loss_weights.{term}: unknown loss term; expected {LOSS_TERMS}")
            weights[term] = float(value)
        if teachers and not afa and weights["fine"]:
            raise ValueError(
                "fine-grained teaching teaches the AFA frame weights: set afa: true, or "
                "loss_weights.fine: 0"
            )
        self.max_frames = clip4clip_kwargs.get("max_frames", 12)
        self.afa_temperature = afa_temperature
        self.fine_temperature = fine_temperature
        self.lr_scale_afa = lr_scale_afa
        self.coarse_loss = coarse_loss
        self.fine_loss = fine_loss
        self.loss_weights = weights
        self.logit_temperature = logit_temperature
        self.afa = AttentionalFrameAggregation(clip.visual.output_dim) if afa else None
        self.teachers = nn.ModuleDict(teachers or {})
        self.teachers.requires_grad_(False)
        self.teachers.eval()

    # ------------------------------------------------------------------ the student
    def aggregate_frames(self, frames: torch.Tensor, video_mask: torch.Tensor):
        """``[B, F, D]`` CLIP frame features and ``[B, F]`` mask -> ``(video [B, D]``
        L2-normalised, ``afa_logits [B, F]`` or None without AFA)."""
        if self.afa is None:
            return super().pool_frames(frames, video_mask), None
        check_real_frames(video_mask)
        features = self.temporal_frame_features(frames, video_mask)
        afa_logits = self.afa(features)
        weights = masked_softmax(afa_logits / self.afa_temperature, video_mask, dim=1)
        video = (weights.unsqueeze(-1) * F.normalize(features, dim=-1)).sum(dim=1)
        return F.normalize(video, dim=-1), afa_logits

    def pool_frames(self, frames: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        """``[B, D]`` L2-normalised video vectors (what the index stores)."""
        return self.aggregate_frames(frames, video_mask)[0]

    @torch.no_grad()
    def frame_weights(self, video: torch.Tensor, video_mask: torch.Tensor):
        """``[B, F]`` AFA pooling weights (at ``afa_temperature``) of ``[B, F, 3, H, W]``
        clips, or None without AFA; the evaluation reports their share on content frames."""
        if self.afa is None:
            return None
        _, afa_logits = self.aggregate_frames(self.encode_frames(video), video_mask)
        return masked_softmax(afa_logits / self.afa_temperature, video_mask, dim=1)

    def lr_family(self, name: str) -> tuple[str, float]:
        if name.startswith("afa."):
            return "afa", self.lr_scale_afa
        return super().lr_family(name)

    # ------------------------------------------------------------------ training
    def forward(self, samples: dict) -> TeachCLIPOutput:
        """The weighted TeachCLIP loss over the (all-gathered) batch.

        Args:
            samples: ``video`` ``[B, F, 3, H, W]``, ``video_mask`` ``[B, F]``,
                ``text_input`` (B strings); the teachers get the same samples.
        """
        video_mask = samples["video_mask"]
        video_feat, afa_logits = self.aggregate_frames(
            self.encode_frames(samples["video"]), video_mask
        )
        text_feat = self.extract_text_features(samples["text_input"])
        if afa_logits is None:
            afa_logits = torch.zeros_like(video_mask, dtype=video_feat.dtype)
        video_feat, text_feat, afa_logits, mask = all_gather_batch_with_grad(
            video_feat, text_feat, afa_logits, video_mask
        )
        logits = self.logit_scale() * text_feat @ video_feat.t() / self.logit_temperature
        contrastive = self.contrastive_output(logits).loss
        coarse, fine = logits.new_zeros(()), logits.new_zeros(())
        for teacher in self.teachers.values():
            taught = self.teach_with(teacher, samples, logits.shape[0])
            coarse = coarse + coarse_teaching_loss(
                logits, taught.logits / self.logit_temperature, self.coarse_loss
            )
            if self.afa is not None:
                fine = fine + fine_teaching_loss(
                    afa_logits, taught.frame_relevance, mask, self.fine_loss, self.fine_temperature
                )
        if len(self.teachers):
            coarse, fine = coarse / len(self.teachers), fine / len(self.teachers)
        weights = self.loss_weights
        loss = weights["contrastive"] * contrastive
        if len(self.teachers):
            loss = loss + weights["coarse"] * coarse + weights["fine"] * fine
        return TeachCLIPOutput(
            loss=loss,
            loss_contrastive=contrastive,
            loss_coarse=coarse,
            loss_fine=fine,
            logits=logits,
            frame_weights=masked_softmax(afa_logits / self.fine_temperature, mask, dim=1),
        )

    def teach_with(self, teacher: nn.Module, samples: dict, batch: int) -> TeacherOutput:
        """A teacher's output on the student's batch, checked against the student's."""
        with torch.no_grad():
            taught = teacher.teach(samples)
        if taught.logits.shape != (batch, batch):
            raise RuntimeError(
                f"{type(teacher).__name__}.teach gave logits {tuple(taught.logits.shape)}, "
                f"the student's gathered batch is {batch}"
            )
        if taught.frame_relevance.shape != (batch, samples["video_mask"].shape[1]):
            raise RuntimeError(
                f"{type(teacher).__name__}.teach gave frame relevance "
                f"{tuple(taught.frame_relevance.shape)}; expected ({batch}, frames)"
            )
        return taught

    # ------------------------------------------------------------------ config
    @classmethod
    def from_config(cls, cfg=None):
        cfg = cfg if cfg is not None else OmegaConf.create()
        max_frames, max_words = cfg.get("max_frames", 12), cfg.get("max_txt_len", 32)
        specs = cfg.get("teachers") or {}
        teachers = {}
        for label, spec in specs.items():
            if spec is None:  # dropped by an override (model.teachers.<label>=null)
                continue
            teachers[label] = build_teacher(label, spec, max_frames, max_words)
            logging.info("TeachCLIP teacher %s: %s, frozen", label, type(teachers[label]).__name__)
        weights = cfg.get("loss_weights")
        return cls._build(
            cfg,
            afa=cfg.get("afa", True),
            afa_temperature=cfg.get("afa_temperature", 0.1),
            fine_temperature=cfg.get("fine_temperature", 1.0),
            lr_scale_afa=cfg.get("lr_scale_afa", 10.0),
            teachers=teachers,
            coarse_loss=cfg.get("coarse_loss", "pear"),
            fine_loss=cfg.get("fine_loss", "ce"),
            loss_weights=OmegaConf.to_container(weights) if weights is not None else None,
            logit_temperature=cfg.get("logit_temperature", 1.0),
        )
