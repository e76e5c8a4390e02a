"""BagFormer (arXiv 2212.14322): a dual encoder with bag-wise late interaction, on
LAVIS's ALBEF parts.

- Image encoder: LAVIS's ViT (``VisionTransformerEncoder``); every output token (with
  [CLS]) is an image token of the bag-wise similarity.
- Text encoder: the first ``fusion_layer`` layers of LAVIS's ``XBertEncoder`` (mode
  ``text``); its remaining layers, with cross-attention to the image tokens, are the fusion
  encoder, used for image-text matching (ITM) and re-ranking only.
- Bagging layer (:mod:`retrieval_ext.models.bagging`): dictionary entities found in the
  caption's token ids are bags, every other word piece is a bag of its own, by the released
  rule (``bag_rule: official``: exact token-id prefixes, leftmost match, an empty bag
  between adjacent entities that counts in the score) or by longest match
  (``bag_rule: longest``). A bag's embedding is the SUM of its tokens' contextual
  embeddings (``bag_fusion: late``) or of their input embeddings (``bag_fusion: early``),
  which then go through the embedding layer again (positions and LayerNorm, one position
  per bag) and the text encoder, attending to the counted bags only ([CLS] and padding
  masked, as in the released code).
- ``vision_proj`` / ``text_proj`` to ``embed_dim``, L2-normalised.

Losses (weights ``ita_weight``, ``itm_weight``, ``twc_weight``): ITA, in-batch contrastive
of the [CLS] features with a learnable temperature (init ``temp``, clamped to
[``temp_min``, ``temp_max``]); ITM, the fusion encoder's matching cross-entropy on every
positive pair and one sampled negative image per caption and caption per image (uniform
among the batch's other images, or by ITA similarity with ``itm_hard_negatives``); TWC,
symmetric in-batch cross-entropy over the bag-wise similarity matrices. Pairs of one image
(the same ``image_id``) are all positives. Negatives are drawn within each process's batch.

``interaction`` switches the late interaction (an ablation trained the same way):
``bagwise`` (BagFormer), ``tokenwise`` (every position of the padded caption a bag, [CLS]
and padding included and none masked, as the released tokenwise model scores them; "w/o
bagging layer"; ``bag_fusion`` does not apply), ``cls_token`` (no late interaction, no
TWC: "w/o late interaction"). In the image-to-text direction the masked bags are zero
vectors as released (``i2t_masked_bags: official``: each image token's best score is at
least 0) or left out of the max (``exclude``).

Evaluation (:meth:`compute_sim_matrix`) returns three score sets, ``{name: (i2t, t2i)}``,
or the one ``run.score_set`` names (LAVIS's ``retrieval`` task reads one pair):
``recall`` (bag-wise similarity over all pairs from precomputed image token embeddings;
the [CLS] cosine for ``cls_token``), ``rank`` (ITM score of the fusion encoder on the top
``k_test`` candidates of ``recall``) and ``merge`` (``rank`` + ``recall``); also ``cls``
(the [CLS] cosine of the same model).
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from retrieval_ext.models.bagging import (
    BAG_RULES,
    MASKED_BAG_MODES,
    EntityBagger,
    chunked_bagwise_similarity,
    pool_bags,
)

import lavis.common.dist_utils as dist_utils
import torch
import torch.distributed as dist
import torch.nn.functional as F
from lavis.common.registry import registry
from lavis.common.utils import get_abs_path
from lavis.models.albef_models import AlbefBase
from lavis.models.med import BertConfig, XBertEncoder
from lavis.models.vit import VisionTransformerEncoder
from omegaconf import OmegaConf
from torch import nn
from transformers import BertTokenizer
from transformers.utils import ModelOutput

DEFAULTS = (  # the package's default config (an export writes LAVIS's relative form)
    Path(__file__).resolve().parents[1] / "configs" / "models" / "bagformer_retrieval_base.yaml"
)
INTERACTIONS = ("bagwise", "tokenwise", "cls_token")
BAG_FUSIONS = ("late", "early")
BELOW_TOP_K = -1e4  # score of the candidates the rank stage does not re-score


@dataclass
class BagFormerOutput(ModelOutput):
    """Loss and its parts (each already weighted); the in-batch bag-wise matrices."""

    loss: torch.Tensor | None = None
    loss_ita: torch.Tensor | None = None
    loss_itm: torch.Tensor | None = None
    loss_twc: torch.Tensor | None = None
    sim_t2i_bagwise: torch.Tensor | None = None
    sim_i2t_bagwise: torch.Tensor | None = None


def _soft_targets(image_ids: torch.Tensor) -> torch.Tensor:
    """In-batch targets: every pair of the same image is a positive, weights summing to 1."""
    positives = torch.eq(image_ids.view(-1, 1), image_ids.view(1, -1)).float()
    return positives / positives.sum(1, keepdim=True)


def _soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -(F.log_softmax(logits, dim=1) * targets).sum(1).mean()


def load_tokenizer(source, default):
    """The BERT tokenizer ``model.tokenizer`` names: empty for ``default()`` (ALBEF's,
    bert-base-uncased from the Hugging Face hub), a local folder holding ``vocab.txt``, a
    ``vocab.txt`` file, or ``package:<module>``, an installed package whose
    ``get_model_path()`` returns such a folder."""
    if not source:
        return default()
    source = str(source)
    if "://" in source:
        raise ValueError(f"model.tokenizer: {source!r} is a URL; give a local folder or file")
    if source.startswith("package:"):
        module = importlib.import_module(source[len("package:") :])
        path = Path(module.get_model_path())
    else:
        path = Path(source).expanduser()
    vocab = path / "vocab.txt" if path.is_dir() else path
    if not vocab.is_file():
        raise FileNotFoundError(
            f"model.tokenizer: no BERT vocabulary at {vocab} (expected a folder holding "
            "vocab.txt, or the vocab.txt file itself)"
        )
    if path.is_dir():
        return BertTokenizer.from_pretrained(str(path), local_files_only=True)
    return BertTokenizer(vocab_file=str(path))


def text_config(cfg) -> BertConfig:
    """The text encoder's ``BertConfig``: ``med_config_path`` (a local file; a relative path
    that is not a file in the working directory is read from LAVIS's package, as ALBEF
    reads it) with ``med_config_overrides`` applied."""
    path = str(cfg.get("med_config_path", "configs/models/med_config_albef.json"))
    if "://" in path:
        raise ValueError(f"model.med_config_path: {path!r} is a URL; give a local file")
    if not os.path.isabs(path) and not os.path.isfile(path):
        path = get_abs_path(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model.med_config_path: no BERT config file at {path}")
    with open(path, encoding="utf-8") as handle:
        values = json.load(handle)
    overrides = cfg.get("med_config_overrides", None)
    if overrides:
        if OmegaConf.is_config(overrides):
            overrides = OmegaConf.to_container(overrides, resolve=True)
        values.update(overrides)
    return BertConfig(**values)


def image_encoder_from_config(cfg) -> VisionTransformerEncoder:
    """LAVIS's ViT: ``vit_type`` base or large as ALBEF builds them (random weights), or
    ``custom`` sized by ``vit_width``, ``vit_depth``, ``vit_heads``, ``vit_patch_size``."""
    if cfg.get("vit_type", "base") != "custom":
        return VisionTransformerEncoder.from_config(cfg, from_pretrained=False)
    width = int(cfg.vit_width)
    encoder = VisionTransformerEncoder(
        img_size=int(cfg.get("image_size", 384)),
        patch_size=int(cfg.get("vit_patch_size", 16)),
        embed_dim=width,
        depth=int(cfg.vit_depth),
        num_heads=int(cfg.vit_heads),
        mlp_ratio=float(cfg.get("vit_mlp_ratio", 4.0)),
        drop_path_rate=float(cfg.get("vit_drop_path_rate", 0)),
        norm_layer=partial(nn.LayerNorm, eps=float(cfg.get("vit_layer_norm_epsilon", 1e-6))),
    )
    encoder.vision_width = width
    return encoder


@registry.register_model("bagformer_retrieval")
class BagFormerRetrieval(AlbefBase):
    """BagFormer on LAVIS's ALBEF parts (see the module docstring).

    Args:
        image_encoder: LAVIS ``VisionTransformerEncoder`` (``vision_width`` set).
        text_encoder: LAVIS ``XBertEncoder`` whose config's ``fusion_layer`` splits text and
            fusion layers.
        tokenizer: BERT tokenizer of the text encoder's vocabulary.
        bagger: the entity bagger (required for ``interaction: bagwise``).
        interaction: ``bagwise`` | ``tokenwise`` | ``cls_token``.
        bag_fusion: ``late`` | ``early``.
        i2t_masked_bags: ``official`` | ``exclude`` (masked bags in image-to-text).
        embed_dim: shared projection width.
        temp, temp_min, temp_max: ITA temperature, its initial value and clamp.
        ita_weight, itm_weight, twc_weight: loss weights.
        itm_hard_negatives: sample ITM negatives by ITA similarity (else uniformly).
        max_txt_len: tokens per caption (with [CLS] and [SEP]).
        gallery_memory_gb: the most the evaluation gallery's image features (kept on the
            CPU in float16) may take; above it evaluation stops before encoding.
    """

    PRETRAINED_MODEL_CONFIG_DICT = {  # absolute: LAVIS joins it to its root unchanged
        "offline": str(DEFAULTS),
    }

    def __init__(
        self,
        image_encoder,
        text_encoder,
        tokenizer,
        bagger: EntityBagger | None = None,
        interaction: str = "bagwise",
        bag_fusion: str = "late",
        i2t_masked_bags: str = "official",
        embed_dim: int = 256,
        temp: float = 0.07,
        temp_min: float = 0.05,
        temp_max: float = 0.5,
        ita_weight: float = 1.0,
        itm_weight: float = 1.0,
        twc_weight: float = 1.0,
        itm_hard_negatives: bool = False,
        max_txt_len: int = 30,
        gallery_memory_gb: float = 16.0,
    ):
        super().__init__()
        if interaction not in INTERACTIONS:
            raise ValueError(
                f"model.interaction: {interaction!r} is not one of {', '.join(INTERACTIONS)}"
            )
        if bag_fusion not in BAG_FUSIONS:
            raise ValueError(
                f"model.bag_fusion: {bag_fusion!r} is not one of {', '.join(BAG_FUSIONS)}"
            )
        if i2t_masked_bags not in MASKED_BAG_MODES:
            raise ValueError(
                f"model.i2t_masked_bags: {i2t_masked_bags!r} is not one of "
                f"{', '.join(MASKED_BAG_MODES)}"
            )
        if interaction == "bagwise" and bagger is None:
            raise ValueError(
                "interaction 'bagwise' needs an entity dictionary (model.entity_dictionary)"
            )
        if not 0 < temp_min <= temp <= temp_max:
            raise ValueError(
                f"model.temp={temp} must lie in [temp_min={temp_min}, temp_max={temp_max}]"
            )

        # define layers
        self.tokenizer = tokenizer
        self.bagger = bagger
        self.visual_encoder = image_encoder
        self.text_encoder = text_encoder
        text_width = text_encoder.config.hidden_size
        self.vision_proj = nn.Linear(image_encoder.vision_width, embed_dim)
        self.text_proj = nn.Linear(text_width, embed_dim)
        self.itm_head = nn.Linear(text_width, 2)
        self.temp = nn.Parameter(temp * torch.ones([]))

        # hyper-parameters
        self.interaction, self.bag_fusion = interaction, bag_fusion
        self.i2t_masked_bags = i2t_masked_bags
        self.temp_min, self.temp_max = temp_min, temp_max
        self.ita_weight, self.itm_weight, self.twc_weight = ita_weight, itm_weight, twc_weight
        self.itm_hard_negatives = itm_hard_negatives
        self.max_txt_len = max_txt_len
        self.gallery_memory_gb = gallery_memory_gb
        self.last_bag_stats: dict = {}

    # ---- text side -------------------------------------------------------------------
    def tokenize(self, captions):
        return self.tokenizer(
            captions,
            padding="max_length",
            truncation=True,
            max_length=self.max_txt_len,
            return_tensors="pt",
        ).to(self.device)

    def encode_text(self, text):
        """Run the text encoder with the configured bagging.

        Returns:
            ``(sequence, sequence_mask, bags, bag_mask)``: what the fusion encoder attends
            to (tokens for late fusion, bags for early) ``(B, L', D)`` with its attention
            mask, and the bag embeddings ``(B, N, D)`` with a mask that is True for the
            bags of the bag-wise similarity (bagwise: [CLS] and padding False, an empty
            bag True; tokenwise: every position True).
        """
        if self.interaction != "bagwise":
            hidden = self.text_encoder.forward_text(text).last_hidden_state
            if self.interaction == "cls_token":
                return (
                    hidden,
                    text.attention_mask,
                    hidden[:, :1],
                    hidden.new_zeros(hidden.shape[0], 1, dtype=torch.bool),
                )
            every_position = torch.ones_like(text.attention_mask, dtype=torch.bool)
            return hidden, text.attention_mask, hidden, every_position
        index = self.bagger.bag_index(text.input_ids.cpu(), text.attention_mask.cpu()).to(
            self.device
        )
        if self.bag_fusion == "late":
            hidden = self.text_encoder.forward_text(text).last_hidden_state  # (B, L, D)
            bags, present = pool_bags(hidden, index)  # (B, N, D)
            bag_mask = present.clone()
            bag_mask[:, 0] = False  # [CLS]
            return hidden, text.attention_mask, bags, bag_mask
        inputs = self.text_encoder.embeddings(input_ids=text.input_ids)  # (B, L, D)
        bag_inputs, present = pool_bags(inputs, index)  # (B, N, D): one position per bag
        bag_mask = present.clone()
        bag_mask[:, 0] = False  # [CLS]: masked in attention too, as released
        bags = self.text_encoder(
            inputs_embeds=bag_inputs,  # through the embedding layer again
            attention_mask=bag_mask.long(),
            return_dict=True,
            mode="text",
        ).last_hidden_state
        return bags, bag_mask.long(), bags, bag_mask

    # ---- training --------------------------------------------------------------------
    def forward(self, samples):
        """LAVIS's batch dict (``image``, ``text_input``, ``image_id``) to the weighted
        ITA + ITM + TWC loss (:class:`BagFormerOutput`)."""
        image, image_ids = samples["image"], samples["image_id"].view(-1)
        with torch.no_grad():
            self.temp.clamp_(self.temp_min, self.temp_max)

        image_embeds = self.visual_encoder.forward_features(image)  # (B, V, Dv)
        image_feat = F.normalize(self.vision_proj(image_embeds[:, 0, :]), dim=-1)
        text = self.tokenize(samples["text_input"])
        sequence, sequence_mask, bags, bag_mask = self.encode_text(text)
        text_feat = F.normalize(self.text_proj(sequence[:, 0, :]), dim=-1)
        targets = _soft_targets(image_ids)

        # ITA: [CLS] contrastive
        sim_i2t = image_feat @ text_feat.t() / self.temp
        loss_ita = (
            _soft_cross_entropy(sim_i2t, targets) + _soft_cross_entropy(sim_i2t.t(), targets)
        ) / 2

        # TWC: bag-wise contrastive
        s_t2i = s_i2t = None
        loss_twc = torch.zeros((), device=image.device)
        if self.interaction != "cls_token":
            bag_feats = F.normalize(self.text_proj(bags), dim=-1)
            image_tokens = F.normalize(self.vision_proj(image_embeds), dim=-1)
            s_t2i, s_i2t = chunked_bagwise_similarity(
                bag_feats, bag_mask, image_tokens, masked_bags=self.i2t_masked_bags
            )
            loss_twc = (
                _soft_cross_entropy(s_t2i, targets) + _soft_cross_entropy(s_i2t, targets)
            ) / 2

        loss_itm = self._itm_loss(
            image_embeds, sequence, sequence_mask, image_ids, sim_i2t.detach()
        )
        loss_ita, loss_itm, loss_twc = (
            self.ita_weight * loss_ita,
            self.itm_weight * loss_itm,
            self.twc_weight * loss_twc,
        )
        return BagFormerOutput(
            loss=loss_ita + loss_itm + loss_twc,
            loss_ita=loss_ita,
            loss_itm=loss_itm,
            loss_twc=loss_twc,
            sim_t2i_bagwise=s_t2i,
            sim_i2t_bagwise=s_i2t,
        )

    def fusion_itm_logits(self, sequence, sequence_mask, image_embeds) -> torch.Tensor:
        """ITM logits ``(B, 2)`` of the fusion encoder for aligned rows of text and image."""
        image_atts = torch.ones(
            image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device
        )
        fused = self.text_encoder(
            encoder_embeds=sequence,
            attention_mask=sequence_mask,
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=image_atts,
            return_dict=True,
            mode="fusion",
        ).last_hidden_state
        return self.itm_head(fused[:, 0, :])

    def _itm_loss(self, image_embeds, sequence, sequence_mask, image_ids, sim_i2t):
        """Positives, one negative image per caption and one negative caption per image
        (rows whose batch holds no other image get no negative)."""
        batch = image_embeds.size(0)
        other = ~torch.eq(image_ids.view(-1, 1), image_ids.view(1, -1))
        if self.itm_hard_negatives:  # ALBEF's: by contrastive similarity
            weights_i2t = F.softmax(sim_i2t.float(), dim=1) * other
            weights_t2i = F.softmax(sim_i2t.t().float(), dim=1) * other
        else:
            weights_i2t = weights_t2i = other.float()
        has_negative = other.any(1)
        rows = torch.nonzero(has_negative).view(-1)
        texts, images = (
            [torch.arange(batch, device=image_embeds.device)],
            [torch.arange(batch, device=image_embeds.device)],
        )
        if len(rows):
            neg_images = torch.multinomial(weights_t2i[rows], 1).view(-1)  # for caption rows
            neg_texts = torch.multinomial(weights_i2t[rows], 1).view(-1)  # for image rows
            texts += [rows, neg_texts]
            images += [neg_images, rows]
        texts, images = torch.cat(texts), torch.cat(images)
        logits = self.fusion_itm_logits(sequence[texts], sequence_mask[texts], image_embeds[images])
        labels = torch.zeros(len(texts), dtype=torch.long, device=logits.device)
        labels[:batch] = 1
        return F.cross_entropy(logits, labels)

    # ---- evaluation ------------------------------------------------------------------
    def _gallery_buffers(self, num_images: int, embeds, tokens):
        """Empty float16 CPU tensors for every image's raw and projected tokens, after
        checking them against ``gallery_memory_gb``."""
        (_, num_tokens, width), dim = embeds.shape, tokens.shape[-1]
        size = num_images * num_tokens * (width + dim) * 2
        if size > self.gallery_memory_gb * 2**30:
            raise ValueError(
                f"the gallery's image features need {size / 2**30:.2f} GiB ({num_images} "
                f"images x {num_tokens} tokens x ({width} + {dim}) values x 2 bytes, float16 "
                f"on the CPU), above model.gallery_memory_gb={self.gallery_memory_gb}; raise "
                "it or evaluate a smaller gallery"
            )
        return (
            torch.empty(num_images, num_tokens, width, dtype=torch.float16),
            torch.empty(num_images, num_tokens, dim, dtype=torch.float16),
        )

    @torch.no_grad()
    def encode_gallery(self, data_loader, text_batch_size: int = 256):
        """Every caption's fusion input, bag features and [CLS] feature, every image's
        token embeddings (raw for the fusion encoder, projected for the similarity; both
        on the CPU in float16, as LAVIS keeps its galleries off the device) and [CLS]
        feature."""
        texts = data_loader.dataset.text
        sequences, sequence_masks, bag_feats, bag_masks, text_cls = [], [], [], [], []
        no_entity = 0
        for start in range(0, len(texts), text_batch_size):
            text = self.tokenize(texts[start : start + text_batch_size])
            sequence, sequence_mask, bags, bag_mask = self.encode_text(text)
            sequences.append(sequence)
            sequence_masks.append(sequence_mask)
            bag_feats.append(F.normalize(self.text_proj(bags), dim=-1))
            bag_masks.append(bag_mask)
            text_cls.append(F.normalize(self.text_proj(sequence[:, 0, :]), dim=-1))
            if self.interaction == "bagwise":
                no_entity += int(
                    (
                        self.bagger.entity_bags(text.input_ids.cpu(), text.attention_mask.cpu())
                        == 0
                    ).sum()
                )
        width = max(b.size(1) for b in bag_feats)  # batches differ in their largest bag count
        bag_feats = torch.cat([F.pad(b, (0, 0, 0, width - b.size(1))) for b in bag_feats])
        bag_masks = torch.cat([F.pad(m, (0, width - m.size(1))) for m in bag_masks])
        width = max(s.size(1) for s in sequences)
        sequences = torch.cat([F.pad(s, (0, 0, 0, width - s.size(1))) for s in sequences])
        sequence_masks = torch.cat([F.pad(m, (0, width - m.size(1))) for m in sequence_masks])

        image_embeds = image_tokens = None
        image_cls, filled = [], 0
        for samples in data_loader:
            embeds = self.visual_encoder.forward_features(samples["image"].to(self.device))
            tokens = F.normalize(self.vision_proj(embeds), dim=-1)
            if image_embeds is None:
                image_embeds, image_tokens = self._gallery_buffers(
                    len(data_loader.dataset), embeds, tokens
                )
            image_embeds[filled : filled + len(embeds)] = embeds.half().cpu()
            image_tokens[filled : filled + len(embeds)] = tokens.half().cpu()
            image_cls.append(tokens[:, 0, :])
            filled += len(embeds)
        self.last_bag_stats = {"captions": len(texts), "captions_without_entity_bag": no_entity}
        if self.interaction == "bagwise":
            logging.info(
                "bagformer: %d of %d captions have no entity bag (scored on single-token bags)",
                no_entity,
                len(texts),
            )
        return {
            "sequence": sequences,
            "sequence_mask": sequence_masks,
            "bag_feats": bag_feats,
            "bag_mask": bag_masks,
            "text_cls": torch.cat(text_cls),
            "image_embeds": image_embeds[:filled],
            "image_tokens": image_tokens[:filled],
            "image_cls": torch.cat(image_cls),
        }

    def recall_scores(self, gallery) -> tuple[torch.Tensor, torch.Tensor]:
        """``(i2t, t2i)`` of the dual-encoder recall stage."""
        if self.interaction == "cls_token":
            sims = gallery["image_cls"] @ gallery["text_cls"].t()
            return sims, sims.t()
        s_t2i, s_i2t = chunked_bagwise_similarity(
            gallery["bag_feats"],
            gallery["bag_mask"],
            gallery["image_tokens"],
            masked_bags=self.i2t_masked_bags,
        )
        return s_i2t, s_t2i

    @torch.no_grad()
    def compute_sim_matrix(self, data_loader, task_cfg):
        """``{"recall", "rank", "merge", "cls"}: (i2t, t2i)`` numpy matrices, or the one
        pair ``task_cfg.score_set`` names (what LAVIS's ``retrieval`` task reads). The rank
        stage re-scores the top ``task_cfg.k_test`` recall candidates of each row with ITM
        (the rows are split between processes and summed); other entries get
        ``BELOW_TOP_K``."""
        gallery = self.encode_gallery(data_loader)
        recall_i2t, recall_t2i = self.recall_scores(gallery)
        cls = gallery["image_cls"] @ gallery["text_cls"].t()
        k_test = int(task_cfg.k_test)
        num_tasks, rank = dist_utils.get_world_size(), dist_utils.get_rank()

        def rerank(recall, rows_are_images: bool):
            scores = torch.zeros_like(recall)
            step = recall.size(0) // num_tasks + 1
            for row in range(rank * step, min(recall.size(0), (rank + 1) * step)):
                top = recall[row].topk(k=min(k_test, recall.size(1))).indices
                if rows_are_images:
                    texts, images = top, torch.full_like(top, row)
                else:
                    texts, images = torch.full_like(top, row), top
                sequence = gallery["sequence"][texts]
                logits = self.fusion_itm_logits(
                    sequence,
                    gallery["sequence_mask"][texts],
                    gallery["image_embeds"][images.cpu()].to(self.device, sequence.dtype),
                )
                scores[row] = BELOW_TOP_K
                scores[row, top] = logits[:, 1]
            if dist_utils.is_dist_avail_and_initialized():
                dist.all_reduce(scores, op=dist.ReduceOp.SUM)
            return scores

        rank_i2t, rank_t2i = rerank(recall_i2t, True), rerank(recall_t2i, False)
        top_i2t, top_t2i = rank_i2t > BELOW_TOP_K, rank_t2i > BELOW_TOP_K
        merge_i2t = torch.where(top_i2t, rank_i2t + recall_i2t, BELOW_TOP_K)
        merge_t2i = torch.where(top_t2i, rank_t2i + recall_t2i, BELOW_TOP_K)

        def pair(i2t, t2i):
            return i2t.cpu().numpy(), t2i.cpu().numpy()

        score_sets = {
            "recall": pair(recall_i2t, recall_t2i),
            "rank": pair(rank_i2t, rank_t2i),
            "merge": pair(merge_i2t, merge_t2i),
            "cls": pair(cls, cls.t()),
        }
        score_set = getattr(task_cfg, "score_set", None)
        if score_set is None:
            return score_sets
        if score_set not in score_sets:
            raise ValueError(f"run.score_set: {score_set!r} is not one of {', '.join(score_sets)}")
        return score_sets[score_set]

    # ---- construction ----------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg=None):
        """Every hyper-parameter from ``cfg`` with defaults; LAVIS's ALBEF parts built
        without downloads (``tokenizer``, see :func:`load_tokenizer`; ``vit_type``;
        ``med_config_path``, ``med_config_overrides``). Checkpoints through LAVIS's
        ``load_checkpoint_from_config``: ``pretrained`` (an ALBEF or BagFormer checkpoint,
        ALBEF's loader) or, with ``load_finetuned``, ``finetuned``; neither: random
        weights."""
        interaction = str(cfg.get("interaction", "bagwise"))
        if interaction not in INTERACTIONS:  # before building anything
            raise ValueError(
                f"model.interaction: {interaction!r} is not one of {', '.join(INTERACTIONS)}"
            )
        if cfg.get("load_finetuned", False) and not cfg.get("finetuned", ""):
            raise ValueError("model.load_finetuned is true but model.finetuned is empty")
        dictionary = cfg.get("entity_dictionary", None)
        if interaction == "bagwise" and not dictionary:  # before loading the tokenizer
            raise ValueError(
                "model.entity_dictionary is required for interaction 'bagwise' (a UTF-8 "
                "file, one phrase per line; see tools/data/lavis/bagformer_dictionary.py)"
            )
        rule = str(cfg.get("bag_rule", "official"))
        if rule not in BAG_RULES:
            raise ValueError(f"model.bag_rule: {rule!r} is not one of {', '.join(BAG_RULES)}")
        tokenizer = load_tokenizer(cfg.get("tokenizer", ""), cls.init_tokenizer)
        bagger = None
        if interaction == "bagwise":
            bagger = EntityBagger.from_file(dictionary, tokenizer, rule=rule)
        model = cls(
            image_encoder=image_encoder_from_config(cfg),
            text_encoder=XBertEncoder(config=text_config(cfg), add_pooling_layer=False),
            tokenizer=tokenizer,
            bagger=bagger,
            interaction=interaction,
            bag_fusion=str(cfg.get("bag_fusion", "late")),
            i2t_masked_bags=str(cfg.get("i2t_masked_bags", "official")),
            embed_dim=int(cfg.get("embed_dim", 256)),
            temp=float(cfg.get("temp", 0.07)),
            temp_min=float(cfg.get("temp_min", 0.05)),
            temp_max=float(cfg.get("temp_max", 0.5)),
            ita_weight=float(cfg.get("ita_weight", 1.0)),
            itm_weight=float(cfg.get("itm_weight", 1.0)),
            twc_weight=float(cfg.get("twc_weight", 1.0)),
            itm_hard_negatives=bool(cfg.get("itm_hard_negatives", False)),
            max_txt_len=int(cfg.get("max_txt_len", 30)),
            gallery_memory_gb=float(cfg.get("gallery_memory_gb", 16.0)),
        )
        finetuned = bool(cfg.get("load_finetuned", False))  # LAVIS's default is true
        if finetuned or cfg.get("pretrained", ""):
            model.load_checkpoint_from_config(OmegaConf.merge(cfg, {"load_finetuned": finetuned}))
        else:
            logging.info("bagformer_retrieval: pretrained is empty, random initialisation")
        return model
