# @Time   : 2026/11/26
# @Author : plugzoo

r"""
UPSR
################################################

Reference:
    "Thoroughly Modeling Multi-domain Pre-trained Recommendation as Language"
    (UPSR), arXiv 2310.13540.

Next-item prediction as text generation: a seq2seq PLM reads the user's history written as
text and is trained with token cross-entropy to write the next item's text. Items are
ranked by the length-normalised log-likelihood of their texts. How items and histories
become text is chosen per stage (pre-training / fine-tuning) from five measured indicators:
see ``recbole_ext/text`` and the README. The paper's code is not public; this is a
reconstruction (README, "UPSR").
"""

from __future__ import annotations

from pathlib import Path

from recbole_ext.model.plm import build_seq2seq
from recbole_ext.model.trie import ItemTrie
from recbole_ext.text.adaptation import TextAdaptation
from recbole_ext.text.tokenizer import TextTokenizer

import numpy as np
import torch
from recbole.model.abstract_recommender import SequentialRecommender
from recbole.utils import InputType
from torch import nn

from plugins.compat import register_recbole_model
from plugins.compat.checkpoints import load_recbole_checkpoint

DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "properties" / "model" / "UPSR.yaml"
STAGES = ("pretrain", "finetune")


def _encoder_output(hidden):
    from transformers.modeling_outputs import BaseModelOutput

    return BaseModelOutput(last_hidden_state=hidden)


@register_recbole_model(default_config=DEFAULT_CONFIG)
class UPSR(SequentialRecommender):
    r"""A seq2seq PLM that writes the next item's text from the history's text."""

    input_type = InputType.POINTWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)

        # load parameters info
        self.stage = config["upsr_stage"]
        if self.stage not in STAGES:
            raise ValueError(f"upsr_stage: {self.stage!r} is not one of {STAGES}")
        self.score_batch_rows = config["upsr_score_batch_rows"]
        self.num_beams = config["upsr_num_beams"]
        self.id_enhanced = config["upsr_id_enhanced"]
        self.id_history_items = config["upsr_id_history_items"]

        # define layers and loss
        plm = build_seq2seq(
            config["plm_backbone"],
            encoder_layers=config["plm_encoder_layers"],
            decoder_layers=config["plm_decoder_layers"],
            tiny=config["plm_tiny"],
        )
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
        self.logger.info(
            f"UPSR {self.stage}: item texts {stage_texts.item_texts.construction.name!r}, "
            f"histories {stage_texts.history.construction.name!r}, backbone {self.signature}"
        )
        ids, lengths = self._tokenize_items(self.item_texts)
        self.register_buffer("item_token_ids", ids, persistent=False)
        self.register_buffer("item_token_len", lengths, persistent=False)
        self.trie = ItemTrie({i: ids[i, : lengths[i]].tolist() for i in range(1, self.n_items)})

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

        Only ``plm.*`` weights are taken (loaded with ``weights_only=True``): item-id
        embeddings belong to the dataset the checkpoint was trained on.
        """
        checkpoint = load_recbole_checkpoint(path, map_location="cpu")
        state = checkpoint.get("state_dict", {})
        if "_extra_state" not in state:
            raise ValueError(
                f"upsr_init_checkpoint: {path} is not a UPSR checkpoint (no plm_signature)"
            )
        self._check_signature(
            state["_extra_state"].get("plm_signature", {}), f"upsr_init_checkpoint {path}"
        )
        plm_state = {k.removeprefix("plm."): v for k, v in state.items() if k.startswith("plm.")}
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
        hidden = self.plm.get_encoder()(inputs_embeds=embeds, attention_mask=mask).last_hidden_state
        return hidden, mask

    def _recent_items(self, sequences: np.ndarray, lengths: np.ndarray) -> torch.Tensor:
        k = self.id_history_items
        recent = torch.zeros(len(lengths), k, dtype=torch.long)
        for b, n in enumerate(lengths):
            items = sequences[b, max(0, n - k) : n]
            recent[b, k - len(items) :] = torch.as_tensor(items)
        return recent

    def _token_log_probs(self, hidden, mask, items):
        """Log-probability of every target token of ``items`` given encoded histories.

        Row ``r`` scores item ``items[r]`` against history ``hidden[r]``. Returns
        ``(log_probs [R, L], valid [R, L])``.
        """
        target = self.item_token_ids[items]  # [R, L_max]
        length = self.item_token_len[items]  # [R]
        width = int(length.max())
        target = target[:, :width]
        valid = torch.arange(width, device=target.device)[None, :] < length[:, None]  # [R, L]
        start = torch.full_like(target[:, :1], self.decoder_start_id)
        decoder_input = torch.cat([start, target[:, :-1]], dim=1)  # teacher forcing
        logits = self.plm(
            encoder_outputs=_encoder_output(hidden),
            attention_mask=mask,
            decoder_input_ids=decoder_input,
            decoder_attention_mask=valid.long(),
        ).logits  # [R, L, V]
        log_probs = logits.log_softmax(dim=-1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
        return log_probs, valid

    def calculate_loss(self, interaction):
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        pos_items = interaction[self.POS_ITEM_ID]
        hidden, mask = self.forward(item_seq, item_seq_len)
        log_probs, valid = self._token_log_probs(hidden, mask, pos_items)
        return -(log_probs * valid).sum() / valid.sum()  # token cross-entropy

    def _item_scores(self, hidden, mask, items):
        log_probs, valid = self._token_log_probs(hidden, mask, items)
        return (log_probs * valid).sum(dim=1) / valid.sum(dim=1)  # length-normalised

    def predict(self, interaction):
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        test_item = interaction[self.ITEM_ID]
        hidden, mask = self.forward(item_seq, item_seq_len)
        return self._item_scores(hidden, mask, test_item)

    def full_sort_predict(self, interaction):
        """``[B, n_items]`` length-normalised log-likelihoods of every item's text.

        Each history is encoded once; item texts are tokenised once (at construction) and
        scored in chunks of ``upsr_score_batch_rows`` (history, item) rows.
        """
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        hidden, mask = self.forward(item_seq, item_seq_len)
        batch = hidden.size(0)
        scores = torch.full((batch, self.n_items), float("-inf"), device=hidden.device)
        chunk = max(1, self.score_batch_rows // batch)
        all_items = torch.arange(1, self.n_items, device=hidden.device)
        for start in range(0, len(all_items), chunk):
            items = all_items[start : start + chunk]  # [C]
            rows_hidden = hidden.repeat_interleave(len(items), dim=0)  # [B * C, S, H]
            rows_mask = mask.repeat_interleave(len(items), dim=0)
            rows_items = items.repeat(batch)  # [B * C]
            scores[:, items] = self._item_scores(rows_hidden, rows_mask, rows_items).view(batch, -1)
        return scores

    @torch.no_grad()
    def recommend_topk(self, interaction, k: int = 10) -> torch.Tensor:
        """Top-``k`` item ids per history by beam search constrained to real item texts.

        Returns ``[B, k]``; a row ends in 0 (padding) when fewer than ``k`` distinct items
        come out of the beams.
        """
        item_seq = interaction[self.ITEM_SEQ]
        item_seq_len = interaction[self.ITEM_SEQ_LEN]
        hidden, mask = self.forward(item_seq, item_seq_len)
        beams = max(k, self.num_beams)

        def allowed(batch_id, decoded):
            # decoded starts with the decoder start token; after an item's EOS only padding
            return self.trie.allowed(decoded[1:].tolist()) or [self.pad_id]

        generated = self.plm.generate(
            encoder_outputs=_encoder_output(hidden),
            attention_mask=mask,
            decoder_start_token_id=self.decoder_start_id,
            eos_token_id=self.eos_id,
            pad_token_id=self.pad_id,
            num_beams=beams,
            num_return_sequences=beams,
            max_new_tokens=int(self.item_token_len.max()),
            prefix_allowed_tokens_fn=allowed,
            do_sample=False,
            length_penalty=1.0,
        )  # [B * beams, T], best first within each history
        out = torch.zeros(hidden.size(0), k, dtype=torch.long)
        for b in range(hidden.size(0)):
            found: list[int] = []
            for sequence in generated[b * beams : (b + 1) * beams, 1:].tolist():
                if self.eos_id not in sequence:
                    continue
                item = self.trie.item(sequence[: sequence.index(self.eos_id) + 1])
                if item is not None and item not in found:
                    found.append(item)
                if len(found) == k:
                    break
            out[b, : len(found)] = torch.tensor(found, dtype=torch.long)
        return out.to(item_seq.device)
