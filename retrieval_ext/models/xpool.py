"""X-Pool-style text-conditioned pooling (Gorti et al., CVPR 2022) as a LAVIS model.

CLIP embeds the sentence (end token) and each frame; a cross-attention block pools the
frames with the *text* as query (as ``layer6ai-labs/xpool``'s ``modules/transformer.py``):
``LayerNorm1`` on both inputs, multi-head attention (query from the text, keys and values
from the frames, ``q/k/v/out_proj``), ``LayerNorm2``, a residual ``linear_proj`` with
dropout, ``LayerNorm3``. Projections start at the identity and biases at zero, as the
official code initialises them. The score of text t and video v is
``exp(logit_scale) * cos(text_t, pooled_{v|t})``; training is the symmetric cross-entropy
over the batch's text x pooled-video matrix. Padded frames are masked out of the attention
(the official code always has every frame).

Retrieval cost: the video vector depends on the query, so a gallery stores every frame
feature (``F * D`` floats per video) and each query re-pools every video
(:meth:`compute_sim_matrix`, in blocks of ``eval_text_batch`` x ``eval_video_batch``).
"""

from __future__ import annotations

import math

from retrieval_ext.models.clip4clip import CLIP4ClipOutput
from retrieval_ext.models.common import all_gather_batch_with_grad, without_prefix
from retrieval_ext.models.teacher import (
    FLOAT_BYTES,
    InteractionRetrieval,
    RetrievalTeacher,
    TeacherOutput,
    check_real_frames,
)

import torch
import torch.nn.functional as F
from lavis.common.registry import registry
from omegaconf import OmegaConf
from torch import nn


class TextConditionedAttention(nn.Module):
    """Multi-head attention with one query per text over each video's frames."""

    def __init__(self, dim: int, heads: int = 1):
        super().__init__()
        if dim % heads:
            raise ValueError(f"feature width {dim} is not divisible by {heads} heads")
        self.heads, self.head_dim = heads, dim // heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def keys_values(self, frames):
        """``[Nv, F, D]`` frames -> keys and values ``[Nv, F, H, d]``: they do not depend on
        the text, so a gallery can store them (:meth:`XPoolRetrieval.score_gallery`)."""
        num_videos, num_frames, _ = frames.shape
        shape = (num_videos, num_frames, self.heads, self.head_dim)
        return self.k_proj(frames).view(shape), self.v_proj(frames).view(shape)

    def forward(self, texts, frames, frame_mask, keys_values=None):
        """``[Nt, D]`` texts, ``[Nv, F, D]`` frames (or their ``keys_values``), ``[Nv, F]``
        mask -> ``([Nv, Nt, D] pooled, [Nv, Nt, F] attention weights averaged over
        heads)``."""
        k, v = keys_values if keys_values is not None else self.keys_values(frames)
        num_videos, dim = k.shape[0], self.heads * self.head_dim
        q = self.q_proj(texts).view(-1, self.heads, self.head_dim)  # [Nt, H, d]
        logits = torch.einsum("thd,vfhd->vhtf", q, k) / math.sqrt(self.head_dim)
        blocked = ~frame_mask.bool()[:, None, None, :]  # [Nv, 1, 1, F]
        weights = torch.softmax(logits.masked_fill(blocked, float("-inf")), dim=-1)
        pooled = torch.einsum("vhtf,vfhd->vthd", weights, v).reshape(num_videos, -1, dim)
        return self.out_proj(pooled), weights.mean(dim=1)


class XPoolPooling(nn.Module):
    """X-Pool's pooling block (official names: ``cross_attn``, ``linear_proj``,
    ``layer_norm1..3``). Scores a gallery alone (as a cost benchmark does)."""

    def __init__(self, dim: int, heads: int = 1, dropout: float = 0.3):
        super().__init__()
        self.cross_attn = TextConditionedAttention(dim, heads)
        self.linear_proj = nn.Linear(dim, dim)
        self.layer_norm1 = nn.LayerNorm(dim)
        self.layer_norm2 = nn.LayerNorm(dim)
        self.layer_norm3 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)
        for name, param in self.named_parameters():  # the official initialisation
            if "proj" in name:
                nn.init.eye_(param) if name.endswith("weight") else nn.init.zeros_(param)

    def keys_values(self, frames):
        """The gallery side of the attention: keys and values of the normalised frames."""
        return self.cross_attn.keys_values(self.layer_norm1(frames))

    def forward(self, texts, frames, frame_mask, keys_values=None):
        """``([Nv, Nt, D] pooled videos, [Nv, Nt, F] attention weights)``; ``frames`` may
        be None when their precomputed ``keys_values`` are given."""
        keys_values = keys_values if keys_values is not None else self.keys_values(frames)
        attended, weights = self.cross_attn(
            self.layer_norm1(texts), None, frame_mask, keys_values=keys_values
        )
        attended = self.layer_norm2(attended)
        pooled = self.layer_norm3(attended + self.dropout(self.linear_proj(attended)))
        return pooled, weights

    def similarity(self, texts, frames, frame_mask, keys_values=None) -> torch.Tensor:
        """``[Nt, Nv]`` cosine of each text with each video pooled for it."""
        pooled, _ = self(texts, frames, frame_mask, keys_values)
        pooled = F.normalize(pooled, dim=-1)  # [Nv, Nt, D]
        return torch.einsum("td,vtd->tv", F.normalize(texts, dim=-1), pooled)

    @staticmethod
    def block_bytes(texts: int, videos: int, frames: int, dim: int) -> int:
        """Peak bytes of one block: about eight ``[videos, texts, D]`` tensors (values,
        pooled, projections, norms) and the ``[videos, texts, F]`` attention."""
        return FLOAT_BYTES * videos * texts * (8 * dim + 2 * frames)


HF_LAYER_PARTS = {
    "self_attn.out_proj.": "attn.out_proj.",
    "layer_norm1.": "ln_1.",
    "layer_norm2.": "ln_2.",
    "mlp.fc1.": "mlp.c_fc.",
    "mlp.fc2.": "mlp.c_proj.",
}
HF_SINGLE = {
    "logit_scale": "logit_scale",
    "text_model.embeddings.token_embedding.weight": "token_embedding.weight",
    "text_model.embeddings.position_embedding.weight": "positional_embedding",
    "text_model.final_layer_norm.weight": "ln_final.weight",
    "text_model.final_layer_norm.bias": "ln_final.bias",
    "vision_model.embeddings.class_embedding": "visual.class_embedding",
    "vision_model.embeddings.patch_embedding.weight": "visual.conv1.weight",
    "vision_model.embeddings.position_embedding.weight": "visual.positional_embedding",
    "vision_model.pre_layrnorm.weight": "visual.ln_pre.weight",
    "vision_model.pre_layrnorm.bias": "visual.ln_pre.bias",
    "vision_model.post_layernorm.weight": "visual.ln_post.weight",
    "vision_model.post_layernorm.bias": "visual.ln_post.bias",
}


def convert_hf_clip_state_dict(hf: dict) -> tuple[dict, list[str]]:
    """A Hugging Face ``CLIPModel`` state dict (X-Pool's ``--huggingface`` checkpoints) in
    OpenAI's CLIP layout, which LAVIS's CLIP uses: ``(state, keys with no place)``.

    q/k/v projections are concatenated into ``in_proj_*``, ``fc1``/``fc2`` become
    ``c_fc``/``c_proj``, the projections are transposed (HF stores ``Linear`` weights);
    ``position_ids`` buffers are dropped.
    """
    out, unplaced, qkv = {}, [], {}
    towers = {"text_model.encoder.layers.": "transformer.resblocks.",
              "vision_model.encoder.layers.": "visual.transformer.resblocks."}  # fmt: skip
    for key, value in hf.items():
        if key.endswith("position_ids"):
            continue
        if key in HF_SINGLE:
            out[HF_SINGLE[key]] = value
        elif key in ("text_projection.weight", "visual_projection.weight"):
            ours = "text_projection" if key.startswith("text") else "visual.proj"
            out[ours] = value.t().contiguous()
        elif tower := next((t for t in towers if key.startswith(t)), None):
            layer, rest = key[len(tower) :].split(".", 1)
            prefix = f"{towers[tower]}{layer}."
            if rest.startswith(("self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj.")):
                which, kind = rest.split(".")[1][0], rest.rsplit(".", 1)[1]
                qkv.setdefault((prefix, kind), {})[which] = value
            elif part := next((p for p in HF_LAYER_PARTS if rest.startswith(p)), None):
                out[prefix + HF_LAYER_PARTS[part] + rest[len(part) :]] = value
            else:
                unplaced.append(key)
        else:
            unplaced.append(key)
    for (prefix, kind), parts in qkv.items():
        if set(parts) != {"q", "k", "v"}:
            unplaced += [f"{prefix}self_attn.{p}_proj.{kind}" for p in parts]
            continue
        out[f"{prefix}attn.in_proj_{kind}"] = torch.cat([parts["q"], parts["k"], parts["v"]])
    return out, unplaced


@registry.register_model("xpool_retrieval")
class XPoolRetrieval(InteractionRetrieval, RetrievalTeacher):
    """X-Pool-style retrieval (see the module docstring); a TeachCLIP teacher.

    Args (beyond :class:`CLIP4ClipRetrieval`'s; ``model_type`` is ``xpool``: no temporal
    module):
        heads: Attention heads of the pooling (X-Pool: 1).
        dropout: Dropout of the residual projection (X-Pool: 0.3).
        eval_*: The evaluation's blocks and memory bound (:class:`InteractionRetrieval`).
    """

    PRETRAINED_MODEL_CONFIG_DICT = {"xpool": "xpool.yaml"}
    EVAL_VIDEO_BATCH = 256  # its block is [videos, texts, D]: no word or frame axis
    FREEZE_LAYER_NUM = -1  # X-Pool trains all of CLIP (at clip_lr)
    OFFICIAL_PREFIXES = {"clip.": "clip.", "pool_frames.": "frame_pool."}
    OFFICIAL_MARKERS = ("pool_frames.",)

    @classmethod
    def convert_official(cls, state: dict, max_frames: int) -> tuple[dict, list[str]]:
        """X-Pool's checkpoint in our names; its ``--huggingface`` CLIP (``clip.text_model.*``,
        ``clip.vision_model.*``) is converted to OpenAI's layout first."""
        state = {without_prefix(k, "module."): v for k, v in state.items()}
        hf = {k[len("clip.") :]: v for k, v in state.items() if k.startswith(("clip.text_model.",
              "clip.vision_model.", "clip.visual_projection.", "clip.text_projection.",
              "clip.logit_scale"))}  # fmt: skip
        if any(k.startswith("text_model.") for k in hf):
            clip, unplaced = convert_hf_clip_state_dict(hf)
            rest = {k: v for k, v in state.items() if k[len("clip.") :] not in hf}
            converted, more = super().convert_official(rest, max_frames)
            converted.update({f"clip.{k}": v.float() for k, v in clip.items()})
            return converted, [f"clip.{k}" for k in unplaced] + more
        return super().convert_official(state, max_frames)

    def __init__(
        self,
        clip,
        heads: int = 1,
        dropout: float = 0.3,
        **kwargs,
    ):
        kwargs["sim_header"] = "meanP"  # X-Pool has no temporal module
        super().__init__(clip, **kwargs)
        self.frame_pool = XPoolPooling(clip.visual.output_dim, heads, dropout)

    def _gathered(self, samples: dict):
        check_real_frames(samples["video_mask"])
        frames = self.encode_frames(samples["video"])
        texts = self.encode_text(self.tokenize(samples["text_input"]).to(self.device))
        return all_gather_batch_with_grad(texts, frames, samples["video_mask"])

    def forward(self, samples: dict) -> CLIP4ClipOutput:
        """Symmetric cross-entropy over the (all-gathered) batch's text x pooled-video
        logits."""
        texts, frames, mask = self._gathered(samples)
        return self.contrastive_output(
            self.logit_scale() * self.frame_pool.similarity(texts, frames, mask)
        )

    @torch.no_grad()
    def teach(self, samples: dict) -> TeacherOutput:
        """The teacher interface: the batch's logits and, per matched pair, X-Pool's
        attention of caption i over clip i's real frames (averaged over heads)."""
        texts, frames, mask = self._gathered(samples)
        pooled, weights = self.frame_pool(texts, frames, mask)  # weights [Nv, Nt, F]
        pooled = F.normalize(pooled, dim=-1)
        logits = self.logit_scale() * torch.einsum("td,vtd->tv", F.normalize(texts, dim=-1), pooled)
        relevance = torch.diagonal(weights, dim1=0, dim2=1).t()  # [B, F]: video i, text i
        return TeacherOutput(logits=logits, frame_relevance=relevance)

    # ------------------------------------------------------------------ evaluation
    def gallery_row(self, video, video_mask):
        """Per video: ``max_frames`` CLIP frame features (zero-padded) and the mask."""
        check_real_frames(video_mask)
        if video.shape[1] > self.max_frames:
            raise ValueError(f"{video.shape[1]} frames but max_frames is {self.max_frames}")
        frames = self.encode_frames(video)
        pad = self.max_frames - frames.shape[1]
        frames, mask = F.pad(frames, (0, 0, 0, pad)), F.pad(video_mask, (0, pad))
        return torch.cat([frames.flatten(1), mask.to(frames.dtype)], dim=1)

    def row_width(self) -> int:
        return self.max_frames * self.clip.visual.output_dim + self.max_frames

    def query_width(self) -> int:
        return self.clip.visual.output_dim

    def block_bytes(self) -> int:
        return self.frame_pool.block_bytes(
            self.eval_text_batch, self.eval_video_batch, self.max_frames,
            self.clip.visual.output_dim,
        )  # fmt: skip

    def encode_queries(self, texts: list[str]) -> torch.Tensor:
        return torch.cat(
            [
                self.encode_text(self.tokenize(texts[i : i + 256]).to(self.device))
                for i in range(0, len(texts), 256)
            ]
        )

    @torch.no_grad()
    def score_gallery(self, queries: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """``[texts, videos]`` cosines of sentence features against gallery rows, every
        video re-pooled for every text, block by block (a video block's keys and values
        are computed once for every text block)."""
        dim, num_frames = self.clip.visual.output_dim, self.max_frames
        frames = rows[:, : num_frames * dim].view(-1, num_frames, dim)
        mask = rows[:, num_frames * dim :].round().long()
        sim = torch.empty(queries.shape[0], frames.shape[0])
        for v in range(0, frames.shape[0], self.eval_video_batch):
            vs = slice(v, v + self.eval_video_batch)
            keys_values = self.frame_pool.keys_values(frames[vs])
            for t in range(0, queries.shape[0], self.eval_text_batch):
                ts = slice(t, t + self.eval_text_batch)
                sim[ts, vs] = self.frame_pool.similarity(
                    queries[ts], None, mask[vs], keys_values
                ).cpu()
        return sim

    @classmethod
    def from_config(cls, cfg=None):
        cfg = cfg if cfg is not None else OmegaConf.create()
        return cls._build(
            cfg,
            heads=cfg.get("heads", 1),
            dropout=cfg.get("dropout", 0.3),
        )
