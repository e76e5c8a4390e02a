# @Time   : 2026/11/26
# @Author : plugzoo

r"""
UPSR
################################################

Reference:
    "Thoroughly Modeling Multi-domain Pre-trained Recommendation as Language"
    (UPSR), arXiv 2310.13540.

Next-item prediction as text generation: a seq2seq PLM reads the user's history written as
text and is trained with token cross-entropy to write the next item's text (optionally with
an item-level ranking term over in-batch item texts). The PLM is an encoder-decoder or one
stack with a sequence-to-sequence attention mask (``plm_architecture``). Items are
ranked by the length-normalised log-likelihood of their texts. How items and histories
become text is chosen per stage (pre-training / fine-tuning) from five measured indicators
(``recbole_ext/text``). The paper's code and body are not public: this is a reconstruction
from its abstract, and every choice the abstract leaves open is a config key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from recbole_ext.model.plm import build_seq2seq, build_unilm
from recbole_ext.model.trie import ItemTrie
from recbole_ext.text.adaptation import TextAdaptation
from recbole_ext.text.policy import STAGES
from recbole_ext.text.tokenizer import TextTokenizer

import numpy as np
import torch
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import InputType
from torch import nn

# full-sort scoring precision: bfloat16 runs the PLM under autocast, log-softmax stays fp32
SCORE_DTYPES = {"float32": None, "bfloat16": torch.bfloat16}
# how an item text's token log-likelihoods become its score (the paper's rule is unknown)
SCORE_NORMALISATIONS = ("length", "sum")
# what full_sort_predict computes: every item's score, or the items beam search writes
FULL_SORT_MODES = ("score", "generative")
# the PLM's shape: an encoder-decoder, or one stack with a sequence-to-sequence mask
ARCHITECTURES = ("encoder_decoder", "unilm")
# decoder positions per LM-head block: a block's fp32 logits over ~3k item tokens (1.4 MB)
# stay in cache. Micro-benchmark, 6,656 positions x 2,751 tokens, bf16 head, 1 thread, load ~3
# (2026-11-29): 42 ms in blocks of 128 (the fastest of 64 to 2,048) against 133 ms unblocked
HEAD_BLOCK = 128


class _ItemTextConstraint:
    """Beam search over item texts only, scored like training and full sort.

    Renormalises the step's log-probabilities over ``output_vocab`` (the softmax UPSR
    trains with), then keeps only the tokens that continue some item's text in the trie.
    """

    def __init__(self, vocab: torch.Tensor, trie: ItemTrie, pad_id: int):
        self.vocab, self.trie, self.pad_id = vocab, trie, pad_id

    def __call__(self, input_ids, scores):
        kept = scores[:, self.vocab]
        normalised = torch.full_like(scores, float("-inf"))
        normalised[:, self.vocab] = kept - kept.logsumexp(dim=-1, keepdim=True)
        out = torch.full_like(scores, float("-inf"))
        for row, decoded in enumerate(input_ids.tolist()):
            allowed = self.trie.allowed(decoded[1:])  # decoded[0] is the decoder start
            if allowed:
                out[row, allowed] = normalised[row, allowed]
            else:  # past the item's EOS: padding only
                out[row, self.pad_id] = 0.0
        return out


@dataclass
class _StackHistory:
    """A history read by the single stack (``plm_architecture: unilm``): its input embeddings
    ``embeds [B, S, H]`` (what the plain joint forward takes) and every layer's attention
    keys and values ``cache [(key, value) [B, h, S, d]]`` (what item texts attend to).
    History tokens never attend to item tokens, so these do not depend on the item."""

    embeds: torch.Tensor
    cache: list

    def select(self, index) -> _StackHistory:
        return _StackHistory(self.embeds[index], [(k[index], v[index]) for k, v in self.cache])


def _heads(attention, x):
    """``[B, T, H]`` projections as ``[B, h, T, d]`` for ``attention`` (a BERT self-attention)."""
    shape = (x.size(0), x.size(1), attention.num_attention_heads, attention.attention_head_size)
    return x.view(shape).transpose(1, 2)


def _merge_heads(context):
    """``[B, h, T, d]`` back to ``[B, T, h * d]``."""
    return context.transpose(1, 2).flatten(2)


def _against_history(rows, history):
    """``rows [R, h, L, X] @ history [1 or R, h, X, Y]``: with one history for every row
    the rows are folded into one ``[h, R*L, X]`` matmul, so the history is never copied
    ``R`` times (a broadcast matmul would expand it)."""
    if history.size(0) == rows.size(0):
        return rows @ history
    count, heads, width, _ = rows.shape
    folded = rows.transpose(0, 1).reshape(heads, count * width, -1) @ history[0]  # [h, R*L, Y]
    return folded.view(heads, count, width, -1).transpose(0, 1)


def _encoder_output(hidden):
    from transformers.modeling_outputs import BaseModelOutput

    return BaseModelOutput(last_hidden_state=hidden)


class UPSR(SequentialRecommender):
    r"""A seq2seq PLM that writes the next item's text from the history's text."""

    input_type = InputType.POINTWISE
    # reads a saved RecBole checkpoint as RecBole's own loads do (torch.load); an
    # environment may substitute a loader with the same signature
    checkpoint_loader = staticmethod(torch.load)

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.stage = config["upsr_stage"]
        if self.stage not in STAGES:
            raise ValueError(f"upsr_stage: {self.stage!r} is not one of {STAGES}")
        self.score_batch_rows = config["upsr_score_batch_rows"]
        self.score_dtype = config["upsr_score_dtype"]
        if self.score_dtype not in SCORE_DTYPES:
            raise ValueError(
                f"upsr_score_dtype: {self.score_dtype!r} is not one of {tuple(SCORE_DTYPES)}"
            )
        self.num_beams = config["upsr_num_beams"]
        self.score_normalisation = config["upsr_score_normalisation"]
        if self.score_normalisation not in SCORE_NORMALISATIONS:
            raise ValueError(
                f"upsr_score_normalisation: {self.score_normalisation!r} is not one of "
                f"{SCORE_NORMALISATIONS}"
            )
        self.full_sort_mode = config["upsr_full_sort"]
        if self.full_sort_mode not in FULL_SORT_MODES:
            raise ValueError(
                f"upsr_full_sort: {self.full_sort_mode!r} is not one of {FULL_SORT_MODES}"
            )
        # the deepest K RecBole's metrics cut the list at (generative mode may be switched
        # on after construction, as the generative benchmark does)
        self.deepest_topk = deepest = max(config["topk"] or [0])
        # generative: ranks past the last beam are undefined, and a metric cut there would
        # count arbitrary unranked items as recommendations
        if self.full_sort_mode == "generative" and deepest > self.num_beams:
            raise ValueError(
                f"upsr_full_sort: generative ranks only the upsr_num_beams "
                f"({self.num_beams}) items beam search writes, but topk asks for "
                f"{deepest}: raise upsr_num_beams to at least {deepest} or lower topk"
            )
        self.id_enhanced = config["upsr_id_enhanced"]
        self.id_history_items = config["upsr_id_history_items"]
        self.output_vocab_mode = config["upsr_output_vocab"]
        if self.output_vocab_mode not in ("items", "full"):
            raise ValueError(
                f"upsr_output_vocab: {self.output_vocab_mode!r} is not 'items' or 'full'"
            )

        self.architecture = config["plm_architecture"]
        if self.architecture not in ARCHITECTURES:
            raise ValueError(
                f"plm_architecture: {self.architecture!r} is not one of {ARCHITECTURES}"
            )
        self.unilm = self.architecture == "unilm"
        if self.unilm and self.full_sort_mode == "generative":
            raise ValueError(
                "upsr_full_sort: generative runs the encoder-decoder's beam search; "
                "plm_architecture unilm scores every item (upsr_full_sort: score)"
            )
        self.rank_weight = config["upsr_rank_weight"]
        self.rank_negatives = config["upsr_rank_negatives"]
        if self.rank_weight < 0 or self.rank_negatives < 1:
            raise ValueError(
                f"upsr_rank_weight ({self.rank_weight}) must be >= 0 and upsr_rank_negatives "
                f"({self.rank_negatives}) >= 1"
            )
        self.pretrained_lr_scale = config["upsr_pretrained_lr_scale"]
        self.warmup_steps = config["upsr_warmup_steps"]

        # define layers and loss
        if self.unilm:
            plm = build_unilm(
                config["plm_backbone"], layers=config["plm_encoder_layers"], tiny=config["plm_tiny"]
            )
        else:
            plm = build_seq2seq(
                config["plm_backbone"],
                encoder_layers=config["plm_encoder_layers"],
                decoder_layers=config["plm_decoder_layers"],
                tiny=config["plm_tiny"],
            )
        self.new_plm_parameters = plm.new_parameters
        self.plm = plm.model
        self.tokenizer = plm.tokenizer
        self.decoder_start_id, self.eos_id, self.pad_id = (
            plm.decoder_start_id,
            plm.eos_id,
            plm.pad_id,
        )
        self.signature = plm.signature
        hidden_size = self.plm.get_input_embeddings().embedding_dim
        if self.id_enhanced:
            # one learned vector per item id, read by the encoder before the history text
            self.item_id_embedding = nn.Embedding(self.n_items, hidden_size, padding_idx=0)
            nn.init.normal_(self.item_id_embedding.weight, std=0.02)

        # text adaptation: constructions chosen for this stage, measured with our tokenizer
        self.text = TextAdaptation(
            config,
            tokenizer=TextTokenizer(self.tokenizer, config["plm_backbone"]),
            log=self.logger.info,
        )
        stage_texts = self.text.for_stage(
            dataset,
            self.stage,
            item_construction=config["upsr_item_text"],
            history_construction=config["upsr_history_text"],
        )
        self.item_texts = stage_texts.item_texts.texts
        if len(self.item_texts) != self.n_items:
            raise ValueError(
                f"dataset has {self.n_items} item ids but {len(self.item_texts)} item texts"
            )
        self.history = stage_texts.history
        self.text_names = (
            stage_texts.item_texts.construction.name,
            stage_texts.history.construction.name,
        )
        self.logger.info(
            f"UPSR {self.stage}: item texts {self.text_names[0]!r}, "
            f"histories {self.text_names[1]!r}, backbone {self.signature}"
        )
        ids, lengths = self._tokenize_items(self.item_texts)
        self.register_buffer("item_token_ids", ids, persistent=False)
        self.register_buffer("item_token_len", lengths, persistent=False)
        # full sort scores items in chunks of similar token length: little padding per chunk
        self.register_buffer(
            "items_by_length", torch.argsort(lengths[1:], stable=True) + 1, persistent=False
        )
        self.trie = ItemTrie({i: ids[i, : lengths[i]].tolist() for i in range(1, self.n_items)})
        vocab_size = self.plm.get_output_embeddings().weight.size(0)
        if self.output_vocab_mode == "items":
            # the softmax runs over the tokens item texts use: UPSR only ever writes item texts
            output_vocab = torch.unique(ids[ids != self.pad_id])
        else:
            output_vocab = torch.arange(vocab_size)
        position = torch.full((vocab_size,), -1, dtype=torch.long)
        position[output_vocab] = torch.arange(len(output_vocab))
        self.register_buffer("output_vocab", output_vocab, persistent=False)
        self.register_buffer("vocab_position", position, persistent=False)
        # BERT-style decoders take precomputed cross-attention keys/values (see _cross_cache)
        self.bert_decoder = hasattr(self.plm, "decoder") and hasattr(self.plm.decoder, "bert")

        # T5-family decoders take them through an EncoderDecoderCache (see _t5_cross_cache)
        self.t5_decoder = type(self.plm).__name__ == "T5ForConditionalGeneration"
        self.plain_scoring = False  # plain_full_sort_predict: no shared cache

        # parameters initialization: the PLM's own (pre-trained) weights, or a UPSR checkpoint
        if config["upsr_init_checkpoint"]:
            self.load_plm_weights(config["upsr_init_checkpoint"])

    def _tokenize_items(self, texts: list[str]):
        """Item texts as padded token ids ending with EOS; the padding item is all padding."""
        encoded = [
            self.tokenizer(t, add_special_tokens=False)["input_ids"] + [self.eos_id] for t in texts
        ]
        empty = [i for i in range(1, len(texts)) if len(encoded[i]) == 1]
        if empty:
            raise ValueError(
                f"items {empty[:10]} have an empty text under the chosen construction; give "
                "them a text field value or choose a construction using other fields"
            )
        width = max(len(e) for e in encoded)
        ids = torch.full((len(texts), width), self.pad_id, dtype=torch.long)
        lengths = torch.zeros(len(texts), dtype=torch.long)
        for i, tokens in enumerate(encoded[1:], 1):
            ids[i, : len(tokens)] = torch.tensor(tokens)
            lengths[i] = len(tokens)
        return ids, lengths

    # ------------------------------------------------------------------ checkpoints

    def get_extra_state(self):
        # saved in every RecBole checkpoint: what the PLM weights belong to
        return {"plm_signature": dict(self.signature)}

    def set_extra_state(self, state):
        self._check_signature(state.get("plm_signature", {}), "checkpoint")

    def _check_signature(self, stored: dict, source: str) -> None:
        keys = ("architecture", "vocab_size", "hidden_size")
        mismatched = {
            k: (stored.get(k), self.signature[k])
            for k in keys
            if stored.get(k) != self.signature[k]
        }
        if mismatched:
            raise ValueError(
                f"UPSR {source} was trained with another backbone or vocabulary: "
                + ", ".join(f"{k} {a!r} != this model's {b!r}" for k, (a, b) in mismatched.items())
                + f" (checkpoint backbone {stored.get('backbone')!r}, "
                f"this one {self.signature['backbone']!r})"
            )

    def load_plm_weights(self, path) -> None:
        """Start from the PLM of a saved UPSR checkpoint (fine-tuning, zero-shot).

        Only ``plm.*`` weights are taken (read by ``checkpoint_loader``, never with
        ``weights_only=False``): item-id embeddings belong to the dataset the checkpoint
        was trained on.
        """
        checkpoint = self.checkpoint_loader(path, map_location="cpu")
        state = checkpoint.get("state_dict", {})
        if "_extra_state" not in state:
            raise ValueError(
                f"upsr_init_checkpoint: {path} is not a UPSR checkpoint (no plm_signature)"
            )
        self._check_signature(
            state["_extra_state"].get("plm_signature", {}), f"upsr_init_checkpoint {path}"
        )
        plm_state = {k[len("plm.") :]: v for k, v in state.items() if k.startswith("plm.")}
        self.plm.load_state_dict(plm_state)
        self.logger.info(f"UPSR: PLM weights from {path}")

    # ------------------------------------------------------------------ model

    def forward(self, item_seq, item_seq_len):
        """Encode each history's text once: ``(hidden [B, S, H], mask [B, S])``."""
        sequences = item_seq.cpu().numpy()
        lengths = item_seq_len.cpu().numpy()
        texts = [self.history.build(sequences[b, : lengths[b]])[0] for b in range(len(lengths))]
        # the history builder already fits the budget; truncation here is only a guard
        encoded = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.text.budget, return_tensors="pt"
        ).to(item_seq.device)
        embeds = self.plm.get_input_embeddings()(encoded["input_ids"])  # [B, S, H]
        mask = encoded["attention_mask"]
        if self.id_enhanced:
            recent = self._recent_items(sequences, lengths).to(item_seq.device)  # [B, K]
            embeds = torch.cat([self.item_id_embedding(recent), embeds], dim=1)  # [B, K + S, H]
            mask = torch.cat([(recent > 0).long(), mask], dim=1)
        if self.unilm:
            return _StackHistory(embeds, self._stack_history_cache(embeds, mask)), mask
        hidden = self.plm.get_encoder()(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        return hidden, mask

    def _stack_history_cache(self, embeds, mask):
        """Every layer's keys/values of the histories ``embeds [B, S, H]`` (segment 0,
        positions from 0), the history attending only to itself."""
        bert = self.plm.bert
        positions = torch.arange(mask.size(1), device=mask.device).expand(mask.shape)
        states = bert.embeddings(
            inputs_embeds=embeds, token_type_ids=torch.zeros_like(positions), position_ids=positions
        )
        reads = mask.bool()[:, None, None, :]  # [B, 1, 1, S]
        cache = []
        layers = bert.encoder.layer
        for index, layer in enumerate(layers):
            attention = layer.attention.self
            key = _heads(attention, attention.key(states))
            value = _heads(attention, attention.value(states))
            cache.append((key, value))
            if index == len(layers) - 1:  # the last layer's history states are never read
                break
            query = _heads(attention, attention.query(states))
            dropout = attention.dropout.p if self.training else 0.0
            context = nn.functional.scaled_dot_product_attention(
                query, key, value, attn_mask=reads, dropout_p=dropout
            )
            states = layer.attention.output(_merge_heads(context), states)
            states = layer.feed_forward_chunk(states)
        return cache

    def _stack_item_states(self, history, mask, decoder_input, user=None):
        """Single-stack states ``[R, L, H]`` of item texts (segment 1, positions after the
        history's), each token attending to its history's cached keys/values and causally
        to the earlier tokens of its own text: the sequence-to-sequence mask, computed
        without running the history again. Row ``r`` reads history ``r``, or history
        ``user`` for every row (then the rows are folded against one cache)."""
        bert = self.plm.bert
        rows, width = decoder_input.shape
        cache = history.cache
        if user is not None:
            cache = [(k[user : user + 1], v[user : user + 1]) for k, v in cache]
            mask = mask[user : user + 1]
        steps = torch.arange(width, device=mask.device)
        positions = (mask.sum(dim=1, keepdim=True) + steps).expand(rows, width)  # [R, L]
        states = bert.embeddings(
            input_ids=decoder_input,
            token_type_ids=torch.ones_like(decoder_input),
            position_ids=positions,
        )
        unread = ~mask.bool()[:, None, None, :]  # [1 or R, 1, 1, S]: history padding
        later = steps[None, :] > steps[:, None]  # [L, L]: a token's future
        for index, layer in enumerate(bert.encoder.layer):
            key, value = cache[index]  # one (key, value) per layer
            attention = layer.attention.self
            scale = 1 / math.sqrt(attention.attention_head_size)
            query = _heads(attention, attention.query(states))  # [R, h, L, d]
            own_key = _heads(attention, attention.key(states))
            own_value = _heads(attention, attention.value(states))
            to_history = _against_history(query, key.transpose(-1, -2)) * scale  # [R, h, L, S]
            to_items = (query @ own_key.transpose(-1, -2)) * scale  # [R, h, L, L]
            logits = torch.cat(
                [to_history.masked_fill(unread, -math.inf), to_items.masked_fill(later, -math.inf)],
                dim=-1,
            )
            probs = logits.softmax(dim=-1)
            probs = nn.functional.dropout(probs, attention.dropout.p, self.training)
            read = key.size(2)
            context = _against_history(probs[..., :read], value) + probs[..., read:] @ own_value
            states = layer.attention.output(_merge_heads(context).to(states.dtype), states)
            states = layer.feed_forward_chunk(states)
        return states

    def _stack_joint_states(self, history, mask, decoder_input, user=None):
        """``_stack_item_states`` the plain way, the reference for it: one forward of the
        Hugging Face BERT over ``[history ; item text]`` with the sequence-to-sequence mask
        as a 3-D attention mask."""
        rows, width = decoder_input.shape
        embeds = history.embeds
        if user is not None:
            embeds = embeds[user : user + 1].expand(rows, -1, -1)
            mask = mask[user : user + 1].expand(rows, -1)
        read = mask.size(1)
        bert = self.plm.bert
        inputs = torch.cat([embeds, bert.embeddings.word_embeddings(decoder_input)], dim=1)
        segments = torch.cat([torch.zeros_like(mask), torch.ones_like(decoder_input)], dim=1)
        steps = torch.arange(width, device=mask.device)
        positions = torch.cat(
            [
                torch.arange(read, device=mask.device).expand(rows, read),
                mask.sum(dim=1, keepdim=True) + steps,
            ],
            dim=1,
        )
        size = read + width
        visible = torch.zeros(rows, size, size, dtype=torch.long, device=mask.device)
        visible[:, :, :read] = mask[:, None, :]  # everyone reads the history's tokens
        visible[:, read:, read:] = (steps[None, :] <= steps[:, None]).long()  # causal item text
        return bert(
            inputs_embeds=inputs,
            attention_mask=visible,
            token_type_ids=segments,
            position_ids=positions,
        ).last_hidden_state[:, read:]

    def _recent_items(self, sequences: np.ndarray, lengths: np.ndarray) -> torch.Tensor:
        k = self.id_history_items
        recent = torch.zeros(len(lengths), k, dtype=torch.long)
        for b, n in enumerate(lengths):
            items = sequences[b, max(0, n - k) : n]
            recent[b, k - len(items) :] = torch.as_tensor(items)
        return recent

    def _cross_cache(self, hidden):
        """Cross-attention keys/values of each history ``hidden [B, S, H]`` in the legacy
        per-layer cache form ``(self_k, self_v, cross_k, cross_v)``, self-attention parts
        empty (teacher forcing runs the whole text at once)."""
        cache = []
        for layer in self.plm.decoder.bert.encoder.layer:
            attention = layer.crossattention.self
            heads, size = attention.num_attention_heads, attention.attention_head_size
            shape = (hidden.size(0), hidden.size(1), heads, size)
            key = attention.key(hidden).view(shape).transpose(1, 2)  # [B, h, S, d]
            value = attention.value(hidden).view(shape).transpose(1, 2)
            empty = hidden.new_zeros(hidden.size(0), heads, 0, size)
            cache.append((empty, empty, key, value))
        return tuple(cache)

    def _one_history_decoder_states(self, history, history_mask, decoder_input, valid):
        """BERT decoder states ``[R, L, H]`` of ``R`` item texts that all read one history
        ``history [1, S, H]``, the decoder's layers run one by one.

        The cross-attention is the same for every row but the query: the rows are folded
        into the query axis, so each layer projects the history's keys/values once and runs
        one attention ``[1, h, R*L, d]`` against them, not ``R`` small ones (the plain
        forward's cost on a CPU). Self-attention, residuals and feed-forward are the
        layers' own modules, so this equals the plain forward (tested).
        """
        bert = self.plm.decoder.bert
        rows, width = decoder_input.shape
        states = bert.embeddings(input_ids=decoder_input)
        self_mask = None  # SDPA then runs causal; texts are right-padded, so causal suffices
        if bert.config._attn_implementation != "sdpa":  # eager attention needs the mask
            causal = torch.ones(width, width, dtype=torch.bool, device=valid.device).tril()
            visible = causal[None, None] & valid[:, None, None, :]  # [R, 1, L, L]
            self_mask = torch.zeros(visible.shape, dtype=states.dtype, device=states.device)
            self_mask = self_mask.masked_fill(~visible, torch.finfo(states.dtype).min)
        reads = history_mask.bool()[:, None, None, :]  # [1, 1, 1, S]: the history's tokens
        for layer in bert.encoder.layer:
            states = layer.attention(states, attention_mask=self_mask)[0]
            cross = layer.crossattention.self
            heads, size = cross.num_attention_heads, cross.attention_head_size
            key = cross.key(history).view(1, -1, heads, size).transpose(1, 2)  # [1, h, S, d]
            value = cross.value(history).view(1, -1, heads, size).transpose(1, 2)
            query = cross.query(states).view(1, rows * width, heads, size).transpose(1, 2)
            read = nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=reads)
            read = read.transpose(1, 2).reshape(rows, width, heads * size)
            states = layer.crossattention.output(read, states)
            states = layer.feed_forward_chunk(states)
        return states

    def _t5_cross_cache(self, hidden, rows):
        """T5's cross-attention keys/values of one history ``hidden [1, S, H]``, computed
        once and expanded to ``rows`` as views (T5 reads them from an
        ``EncoderDecoderCache`` marked as filled)."""
        from transformers.cache_utils import DynamicCache, EncoderDecoderCache

        cache = EncoderDecoderCache(DynamicCache(), DynamicCache())
        for index, block in enumerate(self.plm.decoder.block):
            attention = block.layer[1].EncDecAttention
            heads, size = attention.n_heads, attention.key_value_proj_dim
            key = attention.k(hidden).view(1, -1, heads, size).transpose(1, 2)  # [1, h, S, d]
            value = attention.v(hidden).view(1, -1, heads, size).transpose(1, 2)
            cache.cross_attention_cache.update(
                key.expand(rows, -1, -1, -1), value.expand(rows, -1, -1, -1), index
            )
            cache.is_updated[index] = True
        return cache

    def _token_log_probs(self, hidden, mask, items, user=None):
        """Log-probability of every target token of ``items`` given encoded histories.

        Row ``r`` scores item ``items[r]`` against history ``r``, or against history
        ``user`` for every row when ``user`` is given. The softmax runs over
        ``output_vocab``, in fp32 even under autocast. Returns ``(log_probs [R, L],
        valid [R, L])``.
        """
        rows = len(items)
        target = self.item_token_ids[items]  # [R, L_max]
        length = self.item_token_len[items]  # [R]
        width = int(length.max())
        target = target[:, :width]
        valid = torch.arange(width, device=target.device)[None, :] < length[:, None]  # [R, L]
        start = torch.full_like(target[:, :1], self.decoder_start_id)
        decoder_input = torch.cat([start, target[:, :-1]], dim=1)  # teacher forcing
        if self.unilm:
            states = (self._stack_joint_states if self.plain_scoring else self._stack_item_states)(
                hidden, mask, decoder_input, user
            )
            return self._bert_head_log_probs(states, target, valid), valid
        if self.bert_decoder and user is not None:  # scoring: every row reads one history
            states = self._one_history_decoder_states(
                hidden[user : user + 1], mask[user : user + 1], decoder_input, valid
            )
            return self._bert_head_log_probs(states, target, valid), valid
        row_mask = mask if user is None else mask[user : user + 1].expand(rows, -1)  # [R, S]
        if self.bert_decoder:  # training and predict: row r reads history r
            states = self.plm.decoder.bert(
                input_ids=decoder_input,
                attention_mask=valid.long(),
                # shape only: the keys/values come from the cache
                encoder_hidden_states=hidden.new_zeros(1, 1, 1).expand(rows, *hidden.shape[1:]),
                encoder_attention_mask=row_mask,
                past_key_values=self._cross_cache(hidden),
                use_cache=False,
            ).last_hidden_state  # [R, L, H]
            return self._bert_head_log_probs(states, target, valid), valid
        row_hidden = hidden if user is None else hidden[user : user + 1].expand(rows, -1, -1)
        cache = None
        if user is not None and self.t5_decoder and not self.plain_scoring:
            cache = self._t5_cross_cache(hidden[user : user + 1], rows)
        logits = self.plm(
            encoder_outputs=_encoder_output(row_hidden),
            attention_mask=row_mask,
            decoder_input_ids=decoder_input,
            decoder_attention_mask=valid.long(),
            past_key_values=cache,
            use_cache=cache is not None,
        ).logits[..., self.output_vocab]  # [R, L, V']
        targets = self.vocab_position[target].clamp(min=0)  # padding positions are masked
        log_probs = logits.float().log_softmax(dim=-1)  # fp32: autocast would give bf16
        log_probs = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
        return log_probs, valid

    def _bert_head_log_probs(self, states, target, valid):
        """``log P(target token)`` at the ``valid`` positions of the decoder states
        ``states [R, L, H]``, 0 at padding: the LM head's softmax over ``output_vocab`` in
        fp32, run on text tokens only and in blocks of ``HEAD_BLOCK`` positions, so each
        block's fp32 logits stay in cache (on a CPU, copying all ``[R*L, V']`` logits to
        fp32 and normalising them cost as much as the head's matmul)."""
        # the masked-LM head that writes item tokens (BERT-style decoders and unilm)
        head = (self.plm if self.unilm else self.plm.decoder).cls.predictions
        weight = head.decoder.weight[self.output_vocab]
        bias = head.decoder.bias[self.output_vocab]
        features = head.transform(states[valid])  # [N, H]
        targets = self.vocab_position[target[valid]][:, None]  # [N, 1]
        picked = []
        for start in range(0, len(features), HEAD_BLOCK):
            logits = nn.functional.linear(features[start : start + HEAD_BLOCK], weight, bias)
            log_probs = logits.float().log_softmax(dim=-1)  # fp32: autocast would give bf16
            picked.append(log_probs.gather(-1, targets[start : start + HEAD_BLOCK]).squeeze(-1))
        log_probs = torch.zeros(valid.shape, dtype=torch.float32, device=valid.device)
        log_probs[valid] = torch.cat(picked)
        return log_probs

    def calculate_loss(self, interaction):
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        pos_items = interaction[self.POS_ITEM_ID]
        hidden, mask = self.forward(item_seq, item_seq_len)
        log_probs, valid = self._token_log_probs(hidden, mask, pos_items)
        loss = -(log_probs * valid).sum() / valid.sum()  # token cross-entropy
        if self.rank_weight > 0 and len(pos_items) > 1:
            loss = loss + self.rank_weight * self._rank_loss(hidden, mask, pos_items)
        return loss

    def _rank_loss(self, hidden, mask, pos_items):
        """Item-level ranking term: each history's item text against the item texts of the
        next ``upsr_rank_negatives`` rows of the batch (a sampled softmax over the texts'
        scores, ``upsr_score_normalisation``), so that the text loss's shared item prior is
        pushed against by what tells one history's next item from another's."""
        rows = len(pos_items)
        negatives = min(self.rank_negatives, rows - 1)
        offsets = torch.arange(negatives + 1, device=pos_items.device)
        row = torch.arange(rows, device=pos_items.device)
        candidates = pos_items[(row[:, None] + offsets) % rows]  # [B, 1 + negatives]
        index = row.repeat_interleave(negatives + 1)
        selected = hidden.select(index) if self.unilm else hidden[index]
        scores = self._item_scores(selected, mask[index], candidates.flatten())
        scores = scores.view(rows, negatives + 1)
        # a negative that is the row's own item is no negative
        duplicate = candidates == candidates[:, :1]
        duplicate[:, 0] = False
        scores = scores.masked_fill(duplicate, -math.inf)
        return nn.functional.cross_entropy(scores, torch.zeros_like(pos_items))

    def parameter_groups(self, learning_rate: float) -> list[dict]:
        """Optimiser groups (``UPSRTrainer``): the PLM's pre-trained weights at
        ``learning_rate * upsr_pretrained_lr_scale``, everything that started random (the
        checkpoint did not provide it) at ``learning_rate``."""
        pretrained, new = [], []
        for name, parameter in self.named_parameters():
            trained = name.startswith("plm.") and name[len("plm.") :] not in self.new_plm_parameters
            (pretrained if trained else new).append(parameter)
        groups = [
            {"params": new, "lr": learning_rate},
            {"params": pretrained, "lr": learning_rate * self.pretrained_lr_scale},
        ]
        return [group for group in groups if group["params"]]

    def _item_scores(self, hidden, mask, items, user=None):
        log_probs, valid = self._token_log_probs(hidden, mask, items, user)
        total = (log_probs * valid).sum(dim=1)  # log P(item text | history)
        if self.score_normalisation == "sum":
            return total
        return total / valid.sum(dim=1)  # per token: long texts are not penalised

    def predict(self, interaction):
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        test_item = interaction[self.ITEM_ID]
        hidden, mask = self.forward(item_seq, item_seq_len)
        return self._item_scores(hidden, mask, test_item)

    def full_sort_predict(self, interaction):
        """``[B, n_items]`` length-normalised log-likelihoods of every item's text.

        Each history is encoded once. Item texts are tokenised once (at construction),
        sorted by token length and scored in chunks of ``upsr_score_batch_rows`` items per
        history, so a chunk pads little. A chunk reads its history's cross-attention
        keys/values once: BERT-style decoders fold the chunk's rows into the attention's
        query axis, T5 shares one cache as stride-0 views. ``upsr_score_dtype: bfloat16``
        runs the PLM under autocast.

        ``upsr_full_sort: generative`` scores only the items that trie-constrained beam
        search writes (``upsr_num_beams`` beams): they get their beam scores (the same
        ``upsr_score_normalisation`` rule, in beam order), every other item ``-inf``.
        """
        if self.full_sort_mode == "generative":
            return self.generative_full_sort_predict(interaction)
        dtype = SCORE_DTYPES[self.score_dtype]
        device = interaction[self.ITEM_SEQ].device
        with torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype is not None):
            return self._score_every_item(interaction, self.items_by_length)

    def _score_every_item(self, interaction, items):
        """``[B, n_items]``: each history's score of ``items`` in chunks of
        ``upsr_score_batch_rows``, the padding item ``-inf``."""
        hidden, mask = self.forward(interaction[self.ITEM_SEQ], interaction[self.ITEM_SEQ_LEN])
        scores = torch.full((mask.size(0), self.n_items), float("-inf"), device=mask.device)
        for user in range(mask.size(0)):
            for start in range(0, len(items), self.score_batch_rows):
                chunk = items[start : start + self.score_batch_rows]  # [C]
                scores[user, chunk] = self._item_scores(hidden, mask, chunk, user)
        return scores

    def plain_full_sort_predict(self, interaction):
        """``full_sort_predict`` the plain way, the reference for the fast path: items in
        id order, one plain seq2seq forward per history and chunk (keys/values of the
        history projected for every row), fp32."""
        all_items = torch.arange(1, self.n_items, device=interaction[self.ITEM_SEQ].device)
        bert_decoder, self.bert_decoder = self.bert_decoder, False
        self.plain_scoring = True
        try:
            return self._score_every_item(interaction, all_items)
        finally:
            self.bert_decoder, self.plain_scoring = bert_decoder, False

    @torch.no_grad()
    def _beam_items(self, interaction, beams: int):
        """Trie-constrained beam search: per history, the distinct items the beams wrote,
        best first, and their beam scores (the text's log-likelihood under
        ``upsr_score_normalisation``, EOS included, like ``full_sort_predict``). Runs
        under ``upsr_score_dtype``."""
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        dtype = SCORE_DTYPES[self.score_dtype]
        device = item_seq.device
        with torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype is not None):
            hidden, mask = self.forward(item_seq, item_seq_len)
            generated = self.plm.generate(
                logits_processor=[_ItemTextConstraint(self.output_vocab, self.trie, self.pad_id)],
                encoder_outputs=_encoder_output(hidden),
                attention_mask=mask,
                decoder_start_token_id=self.decoder_start_id,
                eos_token_id=self.eos_id,
                pad_token_id=self.pad_id,
                num_beams=beams,
                num_return_sequences=beams,
                max_new_tokens=int(self.item_token_len.max()),
                do_sample=False,
                # HF divides a finished beam's log-likelihood by its generated tokens
                # (EOS included) ** length_penalty: full sort's rule, mean or sum
                length_penalty=1.0 if self.score_normalisation == "length" else 0.0,
                return_dict_in_generate=True,
                output_scores=True,
            )  # sequences [B * beams, T] and sequences_scores [B * beams], best first
        sequences = generated.sequences[:, 1:].tolist()  # [0] is the decoder start
        beam_scores = generated.sequences_scores.float().tolist()
        items, scores = [], []
        for b in range(hidden.size(0)):
            found: dict[int, float] = {}
            for row in range(b * beams, (b + 1) * beams):
                sequence = sequences[row]
                if self.eos_id not in sequence:  # a beam that never finished
                    continue
                item = self.trie.item(sequence[: sequence.index(self.eos_id) + 1])
                if item is not None and item not in found:
                    found[item] = beam_scores[row]
            items.append(list(found))
            scores.append(list(found.values()))
        return items, scores

    def generative_full_sort_predict(self, interaction):
        """``[B, n_items]``: the items beam search writes get their beam scores (best
        first), every other item ``-inf``, so RecBole's full-sort metrics rank exactly
        the generated items (``topk`` at most ``upsr_num_beams``, checked at
        construction)."""
        device = interaction[self.ITEM_SEQ].device
        items, beam_scores = self._beam_items(interaction, self.num_beams)
        scores = torch.full((len(items), self.n_items), float("-inf"), device=device)
        for b, row_items in enumerate(items):
            scores[b, row_items] = torch.tensor(beam_scores[b], device=device)
        short = sum(len(row) < self.deepest_topk for row in items)
        if short:  # RecBole's top-K would then pick arbitrary -inf items to fill the list
            self.logger.warning(
                f"upsr_full_sort: generative: {short} of {len(items)} histories got fewer than "
                f"{self.deepest_topk} distinct items from {self.num_beams} beams"
            )
        return scores

    @torch.no_grad()
    def recommend_topk(self, interaction, k: int = 10) -> torch.Tensor:
        """Top-``k`` item ids per history by beam search constrained to real item texts
        (``max(k, upsr_num_beams)`` beams).

        Returns ``[B, k]``; a row ends in 0 (padding) when fewer than ``k`` distinct items
        come out of the beams.
        """
        if self.unilm:
            raise ValueError(
                "recommend_topk runs the encoder-decoder's beam search; with plm_architecture "
                "unilm take the top k of full_sort_predict"
            )
        items, _ = self._beam_items(interaction, max(k, self.num_beams))
        out = torch.zeros(len(items), k, dtype=torch.long)
        for b, row in enumerate(items):
            out[b, : min(k, len(row))] = torch.tensor(row[:k], dtype=torch.long)
        return out.to(interaction[self.ITEM_SEQ].device)
