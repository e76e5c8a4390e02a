"""CLIP4Clip (Luo et al., arXiv 2104.08860) as a LAVIS retrieval model.

A CLIP image encoder embeds each frame, a temporal head pools the frames into one video
vector, CLIP's text encoder embeds the sentence (its end-of-text token); the score is the
cosine of the two, and training is CLIP's symmetric InfoNCE over the (all-gathered) batch.

Temporal heads (``model_type``):
- ``meanP``: masked mean of the L2-normalised frame features (no parameters).
- ``seqTransf``: learned frame position embeddings and a small transformer over the
  frames (QuickGELU, as CLIP4Clip's ``TransformerClip`` whatever the backbone uses),
  residual to the raw frame features, then the masked mean. As in CLIP4Clip, its layers
  start from the first CLIP text layers and its position embeddings from the text position
  embeddings, when the widths match (``init_temporal_from_text``).

The backbone is LAVIS's own CLIP (``lavis.models.clip_models.model.CLIP``): OpenAI weights
from a local file or folder (``pretrained``), a named architecture with random
weights (``clip_model_type`` and ``pretrained: ""``), or a small random ``clip_config`` for
tests. Nothing is downloaded; a model built without weights says so in the log. Official
CLIP4Clip checkpoints (``pytorch_model.bin``) load through ``finetuned`` or LAVIS's
``load_model(..., checkpoint=...)`` (:func:`convert_official_state_dict`).

Training needs no runner hook: the ``logit_scale`` bound is applied to the parameter before
each use (:meth:`CLIP4ClipRetrieval.logit_scale`) and before each state dict is taken (so a
checkpoint never holds a value above it), and
:meth:`~CLIP4ClipRetrieval.get_optimizer_params` gives the parameter groups, each with the
``lr_scale`` a group-scaled learning-rate schedule multiplies.

Features other models build on (TeachCLIP's teachers and student): :meth:`encode_frames`
(per-frame CLIP features), :meth:`temporal_frame_features` (after the temporal module),
:meth:`encode_text_tokens` (sentence and word-level features with their mask).
"""

from __future__ import annotations

import datetime
import logging
import math
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from retrieval_ext.configs import default_config_path
from retrieval_ext.models.common import (
    FrozenSubmodulesStayInEval,
    all_gather_batch_with_grad,
    load_model_state,
    without_prefix,
)

import torch
import torch.distributed as dist
import torch.nn.functional as F
from lavis.common.dist_utils import is_dist_avail_and_initialized
from lavis.common.registry import registry
from lavis.models.base_model import BaseModel
from lavis.models.clip_models.model import (
    CLIP,
    QuickGELU,
    Transformer,
    build_model_from_openai_state_dict,
    create_model,
)
from lavis.models.clip_models.tokenizer import _tokenizer
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DistributedSampler
from transformers.utils import ModelOutput

from plugins.compat.checkpoints import CheckpointLoadError, load_checkpoint

SIM_HEADERS = ("meanP", "seqTransf")
NO_DECAY_RULES = ("clip4clip", "standard", "none")


@dataclass
class CLIP4ClipOutput(ModelOutput):
    """What :meth:`CLIP4ClipRetrieval.forward` returns.

    Args:
        loss: ``(loss_t2v + loss_v2t) / 2``.
        loss_t2v: InfoNCE of each text against the batch's videos.
        loss_v2t: InfoNCE of each video against the batch's texts.
        logits: ``[texts, videos]`` scaled cosine similarities over the gathered batch.
        logit_scale: the temperature's inverse used for ``logits``.
    """

    loss: torch.FloatTensor | None = None
    loss_t2v: torch.FloatTensor | None = None
    loss_v2t: torch.FloatTensor | None = None
    logits: torch.FloatTensor | None = None
    logit_scale: torch.FloatTensor | None = None


def _is_torchscript(path: Path) -> bool:
    """Whether ``path`` is a TorchScript archive (OpenAI's release files); a file that is
    no zip archive, or a damaged one, is left to :func:`load_checkpoint` to name."""
    try:
        with zipfile.ZipFile(path) as archive:
            return any(name.endswith("constants.pkl") for name in archive.namelist())
    except zipfile.BadZipFile:
        return False


def _read_state_dict(path: Path, key: str = "model.pretrained") -> dict:
    """A CLIP state dict from a plain checkpoint (``torch.load(weights_only=True)``) or from
    OpenAI's TorchScript release files (``ViT-B-32.pt``), read with ``torch.jit.load``, which
    runs no pickled Python."""
    if _is_torchscript(path):
        try:
            module = torch.jit.load(str(path), map_location="cpu")
        except RuntimeError as error:
            reason = str(error).splitlines()[0]
            problem = f"not a readable TorchScript CLIP archive (RuntimeError: {reason})"
            raise CheckpointLoadError(path, problem, key) from error
        return {k: v.float() for k, v in module.state_dict().items()}
    state = load_checkpoint(path, key)
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise CheckpointLoadError(path, f"holds a {type(state).__name__}, not a state dict", key)
    return {without_prefix(k, "module."): v for k, v in state.items()}


def load_openai_clip(
    pretrained: str | Path, clip_model_type: str = "ViT-B-32", quick_gelu: bool = True
) -> CLIP:
    """LAVIS's CLIP with OpenAI-format weights from a local file, or from
    ``<folder>/<clip_model_type>.pt``; the architecture is read from the weights, the
    activation (not stored in the file) from ``quick_gelu``."""
    path = Path(pretrained).expanduser()
    if path.is_dir():
        path = path / f"{clip_model_type.replace('/', '-')}.pt"
    if not path.is_file():
        raise FileNotFoundError(
            f"CLIP weights not found: {path} (model.pretrained is a local OpenAI-format "
            f"file, or a folder holding {clip_model_type}.pt; nothing is downloaded)"
        )
    return clip_from_state(_read_state_dict(path), f"model.pretrained = {path}", quick_gelu)


def clip_from_state(state: dict, source: str, quick_gelu: bool = True) -> CLIP:
    """LAVIS's CLIP built from an OpenAI-format state dict (``source`` names it in errors),
    its architecture read from the tensors' shapes. A state dict does not record the MLP
    activation: OpenAI's weights were trained with QuickGELU (the default); a CLIP trained
    here from a ``clip_config`` with ``quick_gelu: false`` must be rebuilt with GELU, or it
    runs as a different network from the one that was trained."""
    state = dict(state)
    if "visual.proj" not in state:
        raise ValueError(
            f"{source}: not an OpenAI ViT CLIP state dict (no 'visual.proj'); CLIP4Clip needs "
            f"a ViT image encoder"
        )
    # LAVIS infers the architecture (heads = width / 64, as OpenAI's) but loads into fp16
    # layers; reload the original tensors into the fp32 model so fp32 files keep precision
    clip = build_model_from_openai_state_dict(dict(state)).float()
    if not quick_gelu:  # LAVIS always builds OpenAI's QuickGELU
        for block in clip.modules():
            if isinstance(getattr(block, "gelu", None), QuickGELU):
                block.gelu = torch.nn.GELU()
    for key in ("input_resolution", "context_length", "vocab_size"):
        state.pop(key, None)
    clip.load_state_dict(state)
    return clip


# CLIP tensors a checkpoint lacks when its frozen layers were left out (the embeddings, which
# any freeze_layer_num >= 0 freezes)
WHOLE_CLIP_KEYS = ("token_embedding.weight", "positional_embedding", "visual.conv1.weight")
# CLIP parameters that train at any freeze_layer_num (CLIP4Clip's "top layers")
ALWAYS_TRAINED = ("ln_final.", "text_projection", "logit_scale", "visual.ln_post.", "visual.proj")


def freeze_clip_layers(clip: CLIP, freeze_layer_num: int) -> list[str]:
    """CLIP4Clip's ``freeze_layer_num``: -1 trains all of CLIP; ``k >= 0`` freezes the
    embeddings (patch, class, position and token embeddings, the pre-norm) and the first
    ``k`` blocks of each tower. The final norms, projections and ``logit_scale`` always
    train. Returns the frozen parameter names."""
    depth = max(len(clip.transformer.resblocks), len(clip.visual.transformer.resblocks))
    if not -1 <= freeze_layer_num <= depth:
        raise ValueError(
            f"model.freeze_layer_num must be in [-1, {depth}] (-1 freezes nothing; k freezes "
            f"the embeddings and the first k blocks), got {freeze_layer_num}"
        )
    if freeze_layer_num < 0:
        return []
    frozen = []
    for name, param in clip.named_parameters():
        if name.startswith(ALWAYS_TRAINED):
            continue
        if "resblocks." in name:  # a block of either tower
            block = int(name.split("resblocks.")[1].split(".")[0])
            if block >= freeze_layer_num:
                continue
        param.requires_grad_(False)
        frozen.append(name)
    return frozen


class TemporalTransformer(nn.Module):
    """CLIP4Clip's ``seqTransf`` head: ``[B, T, D]`` frames -> ``[B, T, D]``."""

    def __init__(self, width: int, layers: int, heads: int, max_frames: int, act_layer):
        super().__init__()
        self.heads = heads
        self.frame_position_embeddings = nn.Embedding(max_frames, width)
        self.transformer = Transformer(width, layers, heads, act_layer=act_layer)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, num_frames, _ = frames.shape
        if num_frames > self.frame_position_embeddings.num_embeddings:
            raise ValueError(
                f"{num_frames} frames but max_frames is "
                f"{self.frame_position_embeddings.num_embeddings}"
            )
        positions = torch.arange(num_frames, device=frames.device)
        x = frames + self.frame_position_embeddings(positions)[None]
        # additive key mask, one [T, T] per (sample, head): padded frames are never attended
        blocked = (1.0 - mask.to(x.dtype))[:, None, :] * -1e6  # [B, 1, T]
        attn_mask = blocked.expand(batch, num_frames, num_frames)
        attn_mask = attn_mask.repeat_interleave(self.heads, dim=0)  # [B * heads, T, T]
        x = self.transformer(x.permute(1, 0, 2), attn_mask=attn_mask).permute(1, 0, 2)
        return x + frames  # residual to the raw frame features


def _clamp_logit_scale_before_saving(model, state_dict, prefix, local_metadata):
    """State dict hook: the saved ``logit_scale`` is within its bound. The entry shares the
    parameter's storage, so clamping the parameter in place clamps it; the next use would
    clamp the parameter anyway, so training is unchanged."""
    model.clamp_logit_scale()


@registry.register_model("clip4clip_retrieval")
class CLIP4ClipRetrieval(FrozenSubmodulesStayInEval, BaseModel):
    """CLIP4Clip for text-video retrieval.

    Args:
        clip: LAVIS's CLIP (ViT image tower).
        sim_header: ``"meanP"`` or ``"seqTransf"``.
        max_txt_len: Text tokens including start and end (CLIP4Clip: 32).
        max_frames: Most frames the ``seqTransf`` position embeddings cover.
        temporal_layers: ``seqTransf`` transformer depth (CLIP4Clip: 4).
        init_temporal_from_text: Start ``seqTransf`` from CLIP's first text layers.
        logit_scale_max: The learned ``logit_scale`` parameter is bounded at
            ``log(logit_scale_max)`` (100, as CLIP4Clip, X-CLIP, X-Pool and TeachCLIP do,
            following openai/CLIP#46: a larger scale destabilises training); None leaves
            it free. The official loops clamp it after every optimiser step; here it is
            clamped before every use (:meth:`logit_scale`), which trains the same way
            under any runner, and before every ``state_dict()``: the last optimiser step
            may leave it above the bound, and a checkpoint read with a plain ``exp()``
            (the official code) must not see that.
        lr_scale_clip: Learning-rate multiplier of the CLIP weights relative to the new
            layers (CLIP4Clip's ``coef_lr``, 1e-3): the ``lr_scale`` of their parameter
            groups (:meth:`get_optimizer_params`).
        no_decay_rule: Which parameters get no weight decay: ``clip4clip`` (biases only,
            CLIP4Clip's rule: layer-norm weights, embeddings and ``logit_scale`` decay) or
            ``standard`` (biases, norms, embeddings and scalars) or ``none`` (every
            parameter decays, as X-Pool).
    """

    PRETRAINED_MODEL_CONFIG_DICT = {
        "meanP": "clip4clip_meanP.yaml",
        "seqTransf": "clip4clip_seqTransf.yaml",
    }
    FREEZE_LAYER_NUM = 0  # default of model.freeze_layer_num (CLIP4Clip's)

    def __init__(
        self,
        clip: CLIP,
        sim_header: str = "meanP",
        max_txt_len: int = 32,
        max_frames: int = 12,
        temporal_layers: int = 4,
        init_temporal_from_text: bool = True,
        logit_scale_max: float | None = 100.0,
        lr_scale_clip: float = 1e-3,
        no_decay_rule: str = "clip4clip",
        freeze_layer_num: int | None = None,
    ):
        super().__init__()
        if sim_header not in SIM_HEADERS:
            raise ValueError(f"sim_header must be one of {SIM_HEADERS}, got {sim_header!r}")
        if no_decay_rule not in NO_DECAY_RULES:
            raise ValueError(
                f"no_decay_rule must be one of {NO_DECAY_RULES}, got {no_decay_rule!r}"
            )
        if not hasattr(clip.visual, "transformer"):
            raise ValueError("CLIP4Clip needs a ViT image encoder (got a ResNet/timm tower)")
        context = clip.positional_embedding.shape[0]
        if not 3 <= max_txt_len <= context:
            raise ValueError(f"max_txt_len must be in [3, {context}], got {max_txt_len}")
        # --- parameters
        self.sim_header = sim_header
        self.max_txt_len = max_txt_len
        self.logit_scale_max = logit_scale_max
        self.lr_scale_clip = lr_scale_clip
        self.no_decay_rule = no_decay_rule
        self._register_state_dict_hook(_clamp_logit_scale_before_saving)
        # --- layers
        self.clip = clip
        if freeze_layer_num is None:
            freeze_layer_num = self.FREEZE_LAYER_NUM
        self.freeze_layer_num = freeze_layer_num
        frozen = freeze_clip_layers(clip, freeze_layer_num)
        if frozen:
            logging.info("freeze_layer_num %d: CLIP's %s frozen", freeze_layer_num, frozen)
        self.temporal = None
        if sim_header == "seqTransf":
            width = clip.visual.output_dim
            self.temporal = TemporalTransformer(
                width=width,
                layers=temporal_layers,
                heads=max(width // 64, 1),
                max_frames=max_frames,
                act_layer=QuickGELU,  # CLIP4Clip's TransformerClip always uses QuickGELU
            )
            if init_temporal_from_text:
                self._init_temporal_from_text()

    def _init_temporal_from_text(self) -> None:
        text_width = self.clip.transformer.width
        if text_width != self.clip.visual.output_dim:
            logging.info("seqTransf: text width != embed dim, temporal layers stay random")
            return
        text_positions = self.clip.positional_embedding.detach()
        table = self.temporal.frame_position_embeddings.weight
        rows = min(table.shape[0], text_positions.shape[0])
        with torch.no_grad():
            table[:rows].copy_(text_positions[:rows])
        # block k starts from text block k, as far as the text tower goes
        text_blocks = self.clip.transformer.resblocks
        temporal_blocks = self.temporal.transformer.resblocks[: len(text_blocks)]
        for index, target in enumerate(temporal_blocks):
            target.load_state_dict(text_blocks[index].state_dict())

    # ------------------------------------------------------------------ encoders
    def tokenize(self, texts: list[str]) -> torch.Tensor:
        """BPE ids ``[N, max_txt_len]``: start token, words (truncated), end token, zeros."""
        sot = _tokenizer.encoder["<start_of_text>"]
        eot = _tokenizer.encoder["<end_of_text>"]
        tokens = torch.zeros(len(texts), self.max_txt_len, dtype=torch.long)
        for row, text in enumerate(texts):
            ids = [sot, *_tokenizer.encode(text)[: self.max_txt_len - 2], eot]
            tokens[row, : len(ids)] = torch.tensor(ids)
        return tokens

    def encode_text_tokens(
        self, tokens: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sentence and word-level text features, not normalised.

        Args:
            tokens: ``[N, L]`` ids from :meth:`tokenize` (0 is padding).

        Returns:
            ``sentence [N, D]`` (the end token's output), ``words [N, L, D]`` (every
            token's output through CLIP's text projection, X-CLIP's word features) and
            ``word_mask [N, L]`` (1 up to and including the end token, 0 after it; id 0
            is also the BPE token "!", so the mask comes from positions, not ids).
        """
        length = tokens.shape[1]
        x = self.clip.token_embedding(tokens) + self.clip.positional_embedding[:length]
        x = self.clip.transformer(
            x.permute(1, 0, 2), attn_mask=self.clip.attn_mask[:length, :length]
        )
        words = self.clip.ln_final(x.permute(1, 0, 2)) @ self.clip.text_projection  # [N, L, D]
        eot = tokens.argmax(dim=-1)  # the end token has the largest id
        sentence = words[torch.arange(words.shape[0]), eot]
        positions = torch.arange(length, device=tokens.device)[None]
        return sentence, words, (positions <= eot[:, None]).long()

    def encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        """``[N, L]`` token ids -> ``[N, D]`` sentence features (the end token's)."""
        return self.encode_text_tokens(tokens)[0]

    def encode_frames(self, video: torch.Tensor) -> torch.Tensor:
        """``[B, T, 3, H, W]`` -> ``[B, T, D]`` per-frame CLIP features."""
        batch, num_frames = video.shape[:2]
        frames = self.clip.encode_image(video.flatten(0, 1))  # [B * T, D]
        return frames.view(batch, num_frames, -1)

    def temporal_frame_features(
        self, frames: torch.Tensor, video_mask: torch.Tensor
    ) -> torch.Tensor:
        """``[B, T, D]`` per-frame CLIP features and ``[B, T]`` mask -> ``[B, T, D]`` frame
        features after the temporal module (``seqTransf``; unchanged for ``meanP``), not
        normalised. Rows of padded frames carry no meaning: mask them."""
        if self.temporal is None:
            return frames
        return self.temporal(frames, video_mask)

    def pool_frames(self, frames: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        """``[B, T, D]`` frames and ``[B, T]`` mask -> ``[B, D]`` L2-normalised video vectors."""
        frames = F.normalize(self.temporal_frame_features(frames, video_mask), dim=-1)
        weights = video_mask.to(frames.dtype).unsqueeze(-1)  # [B, T, 1]
        pooled = (frames * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return F.normalize(pooled, dim=-1)

    def extract_video_features(self, video: torch.Tensor, video_mask: torch.Tensor) -> torch.Tensor:
        """``[B, D]`` L2-normalised video vectors (what an index stores)."""
        return self.pool_frames(self.encode_frames(video), video_mask)

    def extract_text_features(self, texts: list[str]) -> torch.Tensor:
        """``[N, D]`` L2-normalised text vectors (the queries)."""
        return F.normalize(self.encode_text(self.tokenize(texts).to(self.device)), dim=-1)

    # ------------------------------------------------------------------ training
    def forward(self, samples: dict) -> CLIP4ClipOutput:
        """Symmetric InfoNCE over the batch (gathered from every process under DDP).

        Args:
            samples: ``video`` ``[B, T, 3, H, W]``, ``video_mask`` ``[B, T]``,
                ``text_input`` (B strings).
        """
        video_feat = self.extract_video_features(samples["video"], samples["video_mask"])
        text_feat = self.extract_text_features(samples["text_input"])
        video_feat, text_feat = all_gather_batch_with_grad(video_feat, text_feat)
        return self.contrastive_output(self.logit_scale() * text_feat @ video_feat.t())

    def contrastive_output(self, logits: torch.Tensor) -> CLIP4ClipOutput:
        """Symmetric InfoNCE of ``[texts, videos]`` logits whose diagonal pairs match."""
        targets = torch.arange(logits.shape[0], device=logits.device)
        loss_t2v = F.cross_entropy(logits, targets)
        loss_v2t = F.cross_entropy(logits.t(), targets)
        return CLIP4ClipOutput(
            loss=(loss_t2v + loss_v2t) / 2,
            loss_t2v=loss_t2v,
            loss_v2t=loss_v2t,
            logits=logits,
            logit_scale=self.logit_scale(),
        )

    def logit_scale(self) -> torch.Tensor:
        """``exp(clip.logit_scale)``, the parameter first clamped in place at
        ``log(logit_scale_max)``. The official loops clamp it after every optimiser step;
        clamping before each use gives the same training (the parameter is read by nothing
        in between) without a runner hook, which LAVIS's ``RunnerBase`` does not have."""
        self.clamp_logit_scale()
        return self.clip.logit_scale.exp()

    def clamp_logit_scale(self) -> None:
        """Clamp the ``clip.logit_scale`` parameter in place at ``log(logit_scale_max)``."""
        if self.logit_scale_max is not None:
            with torch.no_grad():
                self.clip.logit_scale.clamp_(max=math.log(self.logit_scale_max))

    def is_decayed(self, name: str, param: torch.Tensor) -> bool:
        """Whether weight decay applies to parameter ``name`` (``no_decay_rule``)."""
        if self.no_decay_rule == "none":  # X-Pool decays every parameter
            return True
        if self.no_decay_rule == "clip4clip":  # CLIP4Clip: 'bias', 'LayerNorm.bias/weight'
            return not ("bias" in name or "LayerNorm.weight" in name)
        return not (param.ndim < 2 or "bias" in name or ".ln" in name or "embedding" in name)

    def lr_family(self, name: str) -> tuple[str, float]:
        """``(family, lr_scale)`` of parameter ``name``: ``clip`` (the CLIP weights, at
        ``lr_scale_clip``) or ``new`` (layers CLIP does not have, at the base rate)."""
        return ("clip", self.lr_scale_clip) if name.startswith("clip.") else ("new", 1.0)

    def get_optimizer_params(self, weight_decay: float, lr_scale: float = 1.0) -> list[dict]:
        """Parameter groups: :meth:`lr_family` x (decayed | not decayed), base-rate
        families first, each with an ``lr_scale`` (the family's times ``lr_scale``) that a
        group-scaled learning-rate schedule multiplies. Frozen parameters are left out.
        The signature is LAVIS's ``BaseModel.get_optimizer_params``, which its runner
        calls."""
        groups = {}
        named = [(n, p) for n, p in self.named_parameters() if p.requires_grad]
        for name, param in sorted(named, key=lambda p: self.lr_family(p[0])[1] != 1.0):
            family, family_scale = self.lr_family(name)
            no_decay = not self.is_decayed(name, param)
            key = (family, "no_decay" if no_decay else "decay")
            if key not in groups:
                groups[key] = {
                    "name": "/".join(key),
                    "params": [],
                    "weight_decay": 0.0 if no_decay else weight_decay,
                    "lr_scale": family_scale * lr_scale,
                }
            groups[key]["params"].append(param)
        return list(groups.values())

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def encode_video_loader(self, data_loader, rows_of=None) -> torch.Tensor:
        """``[videos, W]`` gallery rows of an evaluation loader, in dataset order.

        Args:
            rows_of: ``(video, video_mask) -> [B, W]``, what a gallery stores per video;
                default :meth:`extract_video_features` (``W = D``, one vector). Models that
                score by interaction (X-CLIP, X-Pool) store per-frame features here.

        With a ``DistributedSampler`` under DDP each process encodes its shard and the
        shards are summed across processes (rows a sampler repeats to even out the shards
        are averaged), so every process returns the whole gallery. Any other loader must
        cover the gallery itself.
        """
        rows_of = rows_of or self.extract_video_features
        features, encoded = None, torch.zeros(len(data_loader.dataset))
        for samples in data_loader:
            feat = rows_of(samples["video"].to(self.device), samples["video_mask"].to(self.device))
            if features is None:
                features = torch.zeros(len(data_loader.dataset), feat.shape[1])
            rows = samples["index"].cpu()
            features[rows] = feat.float().cpu()
            encoded[rows] += 1
        if features is None:
            raise RuntimeError("the evaluation loader yielded no videos")
        sharded = isinstance(getattr(data_loader, "sampler", None), DistributedSampler)
        if sharded and is_dist_avail_and_initialized():
            features *= encoded[:, None]  # a repeated row counts once per process
            # NCCL reduces device tensors only; gloo takes CPU ones
            both = torch.cat([features, encoded[:, None]], dim=1).to(self.device)
            dist.all_reduce(both)
            features, encoded = both[:, :-1].cpu(), both[:, -1].cpu()
            features /= encoded.clamp(min=1)[:, None]
        missing = (encoded == 0).nonzero().flatten()
        if len(missing):
            raise RuntimeError(
                f"{len(missing)} of {len(features)} evaluation videos were never encoded "
                f"(e.g. index {missing[0].item()}); the evaluation loader must cover the "
                "whole gallery, or shard it with a DistributedSampler under DDP"
            )
        return features

    @torch.no_grad()
    def encode_texts(self, texts: list[str], batch_size: int = 256) -> torch.Tensor:
        """``[N, D]`` features of ``texts``, batched."""
        chunks = [
            self.extract_text_features(texts[i : i + batch_size]).float().cpu()
            for i in range(0, len(texts), batch_size)
        ]
        return torch.cat(chunks) if chunks else torch.empty(0, self.clip.visual.output_dim)

    @torch.no_grad()
    def compute_sim_matrix(self, data_loader, task_cfg=None):
        """Cosine similarities of every video with every caption of the loader's dataset.

        Texts are encoded by every process; videos by shards when the loader has a
        ``DistributedSampler`` (see :meth:`encode_video_loader`), else whole.

        Returns:
            ``(sim_v2t [videos, texts], sim_t2v [texts, videos])`` as numpy arrays, LAVIS's
            ``(score_i2t, score_t2i)`` order.
        """
        start = time.time()
        batch_size = int(task_cfg.get("text_batch_size", 256)) if task_cfg is not None else 256
        text_feat = self.encode_texts(list(data_loader.dataset.text), batch_size)
        video_feat = self.encode_video_loader(data_loader)
        sim_t2v = text_feat @ video_feat.t()
        logging.info(
            "Evaluation features computed in %s",
            datetime.timedelta(seconds=int(time.time() - start)),
        )
        return sim_t2v.t().numpy(), sim_t2v.numpy()

    # ------------------------------------------------------------------ config
    @classmethod
    def default_config_path(cls, model_type="meanP"):
        return default_config_path(
            cls.__name__,
            "model_type",
            cls.PRETRAINED_MODEL_CONFIG_DICT,
            model_type,
            "models",
        )

    def load_checkpoint(self, url_or_filename):
        """LAVIS's ``load_model(..., checkpoint=path)``: a local runner checkpoint or an
        official CLIP4Clip ``pytorch_model.bin``, read with ``weights_only=True``; keys that
        do not match are an error naming them (LAVIS's loader would skip them)."""
        load_finetuned(self, url_or_filename, key="load_model(checkpoint=...)")

    @classmethod
    def from_config(cls, cfg=None):
        return cls._build(cfg if cfg is not None else OmegaConf.create())

    @classmethod
    def _build(cls, cfg, **extra):
        """The CLIP the config names, the model around it (CLIP4Clip's keys from ``cfg``,
        a subclass's in ``extra``) and its fine-tuned checkpoint, if any."""
        clip_model_type = cfg.get("clip_model_type", "ViT-B-32")
        pretrained = cfg.get("pretrained", "")
        clip_config = cfg.get("clip_config", None)
        checkpoint = cfg.get("load_finetuned", False) and cfg.get("finetuned", "")
        # a fine-tuned checkpoint replaces every CLIP weight: read it first, and take the
        # architecture the OpenAI file would give from its CLIP tensors instead of the file
        state = read_finetuned_state(checkpoint, cls, cfg) if checkpoint else None
        # the activation a state dict cannot record: the config's, else OpenAI's QuickGELU
        quick_gelu = bool(clip_config.get("quick_gelu", True)) if clip_config else True
        clip_state = {}
        if state is not None:
            clip_state = {k[len("clip.") :]: v for k, v in state.items() if k.startswith("clip.")}
        # a checkpoint of LAVIS's RunnerBase leaves the frozen CLIP layers out: those come
        # from the OpenAI file, the rest from the checkpoint
        whole = all(k in clip_state for k in WHOLE_CLIP_KEYS)
        if pretrained and whole:
            clip = clip_from_state(clip_state, f"model.finetuned = {checkpoint}", quick_gelu)
        elif pretrained:
            clip = load_openai_clip(pretrained, clip_model_type, quick_gelu)
        elif clip_config is not None:
            clip = CLIP(**OmegaConf.to_container(clip_config, resolve=True))
        else:  # a named architecture, randomly initialised (LAVIS's config table)
            clip = create_model(clip_model_type, pretrained="")
        model = cls(
            clip=clip,
            sim_header=cfg.get("model_type", "meanP"),
            max_txt_len=cfg.get("max_txt_len", 32),
            max_frames=cfg.get("max_frames", 12),
            temporal_layers=cfg.get("temporal_layers", 4),
            init_temporal_from_text=cfg.get("init_temporal_from_text", True),
            logit_scale_max=cfg.get("logit_scale_max", 100.0),
            lr_scale_clip=cfg.get("lr_scale_clip", 1e-3),
            no_decay_rule=cfg.get("no_decay_rule", "clip4clip"),
            freeze_layer_num=cfg.get("freeze_layer_num", None),
            **extra,
        )
        if checkpoint:
            load_model_state(model, state, checkpoint, frozen_kept=bool(pretrained) and not whole)
        elif not pretrained:
            logging.warning(
                "%s built with RANDOM weights: no model.pretrained (a local OpenAI CLIP file "
                "or a folder holding <clip_model_type>.pt) and no model.finetuned checkpoint "
                "were given",
                cls.__name__,
            )
        return model

    # ------------------------------------------------------------------ official checkpoints
    # key prefixes of the official code's state dict -> ours (CLIP4Clip: ArrowLuo/CLIP4Clip)
    OFFICIAL_PREFIXES = {
        "clip.": "clip.",
        "transformerClip.": "temporal.transformer.",
        "frame_position_embeddings.": "temporal.frame_position_embeddings.",
    }
    # keys only the official layout has (ours say temporal.*)
    OFFICIAL_MARKERS = ("transformerClip.", "frame_position_embeddings.")

    @classmethod
    def is_official(cls, state: dict) -> bool:
        """Whether ``state`` is in the official code's names rather than ours."""
        return any(without_prefix(key, "module.").startswith(cls.OFFICIAL_MARKERS) for key in state)

    @classmethod
    def convert_official(cls, state: dict, max_frames: int) -> tuple[dict, list[str]]:
        """``(state in our names, float32; keys with no place here)``.

        Prefixes map by :attr:`OFFICIAL_PREFIXES`; a 77-row official frame position table
        keeps its first ``max_frames`` rows (positions past the last frame are never used).
        """
        out, unplaced = {}, []
        for key, value in state.items():
            key = without_prefix(key, "module.")
            prefix = max(
                (p for p in cls.OFFICIAL_PREFIXES if key.startswith(p)), key=len, default=None
            )
            if prefix is None:
                unplaced.append(key)
                continue
            ours = cls.OFFICIAL_PREFIXES[prefix] + key[len(prefix) :]
            if ours == "temporal.frame_position_embeddings.weight":
                if value.shape[0] < max_frames:
                    raise ValueError(
                        f"frame_position_embeddings has {value.shape[0]} rows, fewer than "
                        f"max_frames={max_frames}"
                    )
                value = value[:max_frames]
            out[ours] = value.float() if value.is_floating_point() else value
        return out, unplaced


def convert_official_state_dict(state: dict, max_frames: int) -> dict:
    """An official CLIP4Clip (meanP / seqTransf) state dict in our names; keys of other
    heads (``tightTransf``'s cross encoder, ``seqLSTM``) are an error naming them."""
    out, unplaced = CLIP4ClipRetrieval.convert_official(state, max_frames)
    if unplaced:
        raise KeyError(
            f"not a meanP/seqTransf CLIP4Clip checkpoint: unexpected keys {unplaced[:10]}"
        )
    return out


def read_finetuned_state(path: str | Path, model_cls, cfg, key: str = "model.finetuned") -> dict:
    """The state dict, in ``model_cls``'s names, of a checkpoint written by the runner
    (``{"model": state_dict, ...}``) or by the official code (``pytorch_model.bin``, or
    ``{"state_dict": ...}``; converted by :meth:`~CLIP4ClipRetrieval.convert_official` for
    the frames of ``cfg``), read with ``weights_only=True``; keys with no place stop with
    their names, and a file that is refused or unreadable with its path and ``key``."""
    path = Path(path).expanduser()
    state = load_checkpoint(path, key)
    if isinstance(state, dict):
        state = state.get("model", state.get("state_dict", state))
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        problem = "not a state dict of tensors (a runner checkpoint holds {'model': state_dict})"
        raise CheckpointLoadError(path, problem, key)
    state = {without_prefix(k, "module."): v for k, v in state.items()}
    if model_cls.is_official(state):
        seq_transf = cfg.get("model_type", "meanP") == "seqTransf"
        max_frames = cfg.get("max_frames", 12) if seq_transf else 0
        state, unplaced = model_cls.convert_official(state, max_frames)
        if unplaced:
            raise KeyError(
                f"{key} = {path}: official checkpoint keys with no place in "
                f"{model_cls.__name__}: {unplaced[:10]}"
            )
    return state


def load_finetuned(model: CLIP4ClipRetrieval, path: str | Path, key: str = "model.finetuned"):
    """Load a checkpoint written by the runner or one of the official code's
    (:func:`read_finetuned_state`) into ``model``; keys missing or unexpected stop with
    their names."""
    max_frames = model.temporal.frame_position_embeddings.num_embeddings if model.temporal else 0
    cfg = {"model_type": "seqTransf" if model.temporal else "meanP", "max_frames": max_frames}
    load_model_state(model, read_finetuned_state(path, type(model), cfg, key), path, key)
