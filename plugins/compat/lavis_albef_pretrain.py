"""LAVIS 1.0.2's ALBEF pre-training model (``albef_pretrain``) offline, on CPU, from a
local config.

As shipped, ``AlbefPretrain.from_config`` downloads twice: the ViT's ImageNet weights
(``VisionTransformerEncoder.from_config(cfg, from_pretrained=True)``) and BERT
(``BertForMaskedLM.from_pretrained("bert-base-uncased")``, with ``fusion_layer`` forced to
6 whatever the config says); the tokenizer is the hub's bert-base-uncased too. It never
reads ``pretrained`` (its default names ALBEF.pth's URL), so a config that sets it is
silently ignored. The fix below builds the same model from the local parts
:mod:`plugins.compat.lavis_albef` builds ``albef_retrieval`` from, so a pre-trained
checkpoint hands over to ``albef_retrieval`` and ``bagformer_retrieval`` by LAVIS's own
``load_from_pretrained``.
"""

from __future__ import annotations

import logging

from plugins.compat.lavis_albef import (
    add_offline_model_type,
    build_albef,
    enqueue_only_into_a_queue,
    image_encoder_from_config,
    load_text_init,
    text_config,
)


def albef_pretrain_offline_from_config() -> bool:
    """Build LAVIS's ``albef_pretrain`` from a local config, without the network.

    Upstream: LAVIS 1.0.2 ``AlbefPretrain.from_config`` (no upstream issue tracks offline
    use). Replaces ``from_config`` with one that reads every key LAVIS reads plus the keys
    of the offline ``albef_retrieval`` (``tokenizer``, required; ``vit_type: custom`` with
    its sizes; ``med_config_overrides``, whose ``fusion_layer`` is kept; ``text_init``).
    The ViT and BERT start from random weights, or BERT from ``text_init``; LAVIS's own
    ``__init__`` then makes the momentum copies and the queue (``queue_size``, a multiple
    of the global batch size). A non-empty ``pretrained`` is an error naming the key (LAVIS
    ignores it): continue a pre-training with ``run.resume_ckpt_path``. ``model_type:
    offline`` adds local defaults.

    Returns:
        True if applied by this call.
    """
    from lavis.models.albef_models.albef_pretrain import AlbefPretrain
    from lavis.models.med import BertForMaskedLM

    if getattr(AlbefPretrain.from_config, "_plugzoo_offline", False):
        return False

    def from_config(cls, cfg=None):
        if cfg.get("pretrained", ""):
            raise ValueError(
                f"model.pretrained = {cfg.pretrained}: albef_pretrain builds random weights "
                "(or BERT from model.text_init); to continue a pre-training, give its "
                "checkpoint as run.resume_ckpt_path and set model.pretrained to ''"
            )
        image_encoder = image_encoder_from_config(cfg)
        text_encoder = BertForMaskedLM(config=text_config(cfg))
        if cfg.get("text_init", ""):  # before the momentum copy is made
            load_text_init(text_encoder.bert, cfg.text_init)
        model = build_albef(
            cls,
            cfg,
            image_encoder,
            text_encoder,
            queue_size=cfg.get("queue_size", 65536),
            mlm_mask_prob=cfg.get("mlm_mask_prob", 0.15),
        )
        logging.info(
            "albef_pretrain: %s, a queue of %d keys",
            "BERT from text_init" if cfg.get("text_init", "") else "random initialisation",
            model.queue_size,
        )
        return model

    from_config._plugzoo_offline = True
    add_offline_model_type(AlbefPretrain, "albef_pretrain_base.yaml")
    AlbefPretrain.from_config = classmethod(from_config)
    return True


def lavis_numpy2_inf_alias() -> bool:
    """Restore ``np.Inf`` (NumPy 2 removed it; ``np.inf`` is the same float).

    Upstream: LAVIS 1.0.2 ``AlbefPretrain.forward`` (and ``AlproRetrieval.forward``) mask
    the ITM hard-negative weights with ``fill_diagonal_(-np.Inf)``: under NumPy 2 the first
    training step fails with "AttributeError: `np.Inf` was removed in the NumPy 2.0
    release" (no upstream issue known).

    Returns:
        True if applied by this call.
    """
    import numpy as np

    if "Inf" in np.__dict__:
        return False
    np.Inf = np.inf
    return True


def albef_pretrain_runs_without_a_queue() -> bool:
    """``queue_size: 0`` for ``albef_pretrain``: ITC against the batch's own momentum keys.

    Upstream: LAVIS 1.0.2 ``SharedQueueMixin._dequeue_and_enqueue`` writes each batch's
    keys into the queue: for a queue of 0 the first step fails ("The expanded size of the
    tensor (0) must match..."), so ALBEF's pre-training always has a queue of at least one
    global batch (the same defect as ``albef_runs_without_a_queue`` for ``albef_retrieval``).
    With 0 the queue tensors are empty and LAVIS's loss covers the batch alone.

    Returns:
        True if applied by this call.
    """
    from lavis.models.albef_models.albef_pretrain import AlbefPretrain

    return enqueue_only_into_a_queue(AlbefPretrain)
