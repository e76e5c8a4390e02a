"""The five indicators: deterministic measurements of a text construction on a dataset.

Every score is in [0, 1]. Higher is better for naturalness, domain consistency and
informativeness; noise & ambiguity is a rate (lower is better); text length is reported in
tokens of the model's tokenizer and turned into a score against a stage's budget by the
policy (:mod:`recbole_ext.text.policy`).

- naturalness: how much the text reads like language to the PLM. Two views, averaged:
  the tokenizer's (share of tokens that are whole vocabulary words, short numbers or
  ordinary punctuation, rather than fragments of split words, symbols, codes or unknown
  tokens) and a unigram language model's (mean Zipf frequency of the words under
  ``wordfreq``'s English model, divided by 7 and capped at 1: ``the`` is 7.7, a rare
  name about 2). Key:value markup, codes and junk lower both.
- domain consistency: how alike the texts of different domains look. Per pair of domains:
  the tokenizer's token-class distributions (Jensen-Shannon divergence), the share of
  items each field appears in, and mean length; for item texts also the cosine between the
  domains' mean sentence embeddings (all-MiniLM-L6-v2). A domain's value is its mean
  similarity to the others; with one domain the indicator is undefined (``None``).
- informativeness: how well the text identifies the item: mean of the share of items with a
  unique text, the normalised entropy of the text distribution, and the coverage of the
  dataset's item attributes (``item_text_fields``) by the text. For histories: the share of
  the (up to ``text_history_reference_items``) most recent items that the text keeps.
- noise & ambiguity: mean of the share of items whose text still carries noise (markup,
  null values, values failing ``text_field_patterns``, "Title, The" inversions, years
  glued to titles, items left with no text) and the share of items whose text is
  identical to another item's. For
  histories: separator collisions, the share of the written histories in which some item
  text contains the history separator (the history cannot be split back into its items,
  e.g. "Fast, Cheap & Out of Control (1997)" in a comma-separated list), measured with the
  item texts of each stage.
- text length: tokens per item text (mean, median, 95th percentile, max) and per history
  (special tokens included) against ``history_token_budget``.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter

from recbole_ext.text.item_text import ItemTexts, collision_groups, normalise
from recbole_ext.text.tokenizer import TextTokenizer

import numpy as np

TOKEN_CLASSES = ("word", "number", "punctuation", "fragment", "symbol", "unknown")
NATURAL_CLASSES = {"word", "number", "punctuation"}
ORDINARY_PUNCTUATION = set(",.'!?()-&\"")
# which cleaner removes each kind of noise that value_noise() reports
NOISE_CLEANER = {
    "markup": "markup",
    "null_value": "null_values",
    "pattern_mismatch": "field_patterns",
    "trailing_year": "trailing_year",
    "article_suffix": "article_suffix",
}
ZIPF_SCALE = 7.0
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


class TextStats:
    """Per-text token classes and unigram-LM word scores, measured once per distinct text.

    A row is ``[count of each of TOKEN_CLASSES..., sum of word scores, number of words]``.
    WordPiece and sentencepiece pre-tokenise at whitespace (and WordPiece at punctuation),
    so the row of a history text is the sum of the rows of its prompt, item texts and
    separators: histories are measured from their parts without re-tokenising.
    """

    def __init__(self, tokenizer: TextTokenizer, language: str = "en"):
        self.tokenizer = tokenizer
        self.language = language
        self._rows: dict[str, np.ndarray] = {}

    def of(self, texts: list[str]) -> np.ndarray:
        """``[len(texts), len(TOKEN_CLASSES) + 2]`` rows."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._rows))
        unknown = self.tokenizer.hf.unk_token
        for start in range(0, len(missing), 512):
            batch = missing[start : start + 512]
            split = self.tokenizer.pieces(batch)  # one (pieces, word ids) per text
            for index, text in enumerate(batch):
                pieces, word_ids = split[index]
                row = np.zeros(len(TOKEN_CLASSES) + 2)
                words: dict[int | None, list[str]] = {}
                for position, piece in enumerate(pieces):
                    words.setdefault(word_ids[position], []).append(piece)
                for group in words.values():
                    row[TOKEN_CLASSES.index(_classify(group, unknown))] += len(group)
                found = _WORD.findall(text)
                row[-2] = sum(_word_score(w, self.language) for w in found)
                row[-1] = len(found)
                self._rows[text] = row
        width = len(TOKEN_CLASSES) + 2
        return np.stack([self._rows[t] for t in texts]) if texts else np.zeros((0, width))


def _strip_marker(piece: str, marker: str) -> str:
    """``piece`` without a leading sub-word ``marker`` (``str.removeprefix`` needs 3.9)."""
    return piece[len(marker) :] if piece.startswith(marker) else piece


def _classify(pieces: list[str], unknown: str | None) -> str:
    if unknown is not None and unknown in pieces:
        return "unknown"
    word = "".join(_strip_marker(_strip_marker(p, "##"), "▁") for p in pieces)
    if not word:
        return "punctuation"  # a bare sentencepiece word boundary
    if all(ch in ORDINARY_PUNCTUATION for ch in word):
        return "punctuation"
    if word.isdigit():
        return "number" if len(word) <= 4 else "symbol"
    if word.isalpha() and len(pieces) == 1:
        return "word"
    if any(ch.isalnum() for ch in word):
        return "fragment"
    return "symbol"


@functools.lru_cache(maxsize=500_000)
def _word_score(word: str, language: str) -> float:
    from wordfreq import zipf_frequency

    return min(zipf_frequency(word, language) / ZIPF_SCALE, 1.0)


def naturalness(rows: np.ndarray) -> dict:
    """Tokenizer view, unigram-LM view, and their mean (the score), from TextStats rows."""
    rows = rows[rows[:, : len(TOKEN_CLASSES)].sum(axis=1) > 0]  # empty texts say nothing
    if not len(rows):
        return {"score": 0.0, "tokenizer_view": 0.0, "lm_view": 0.0, "token_classes": {}}
    classes = rows[:, : len(TOKEN_CLASSES)].sum(axis=0)
    total = classes.sum()
    natural = sum(classes[TOKEN_CLASSES.index(c)] for c in NATURAL_CLASSES)
    tokenizer_view = float(natural / total)
    per_text = np.divide(rows[:, -2], rows[:, -1], out=np.zeros(len(rows)), where=rows[:, -1] > 0)
    lm_view = float(per_text.mean())
    return {
        "score": (tokenizer_view + lm_view) / 2,
        "tokenizer_view": tokenizer_view,
        "lm_view": lm_view,
        "token_classes": {c: float(classes[i] / total) for i, c in enumerate(TOKEN_CLASSES)},
    }


def informativeness(texts: ItemTexts, items, fields: list[str]) -> dict:
    """Unique-text share, normalised entropy and attribute coverage, and their mean."""
    items = list(items)
    n = len(items)
    if n == 0:
        return {"score": 0.0, "unique_share": 0.0, "entropy": 0.0, "coverage": 0.0}
    counts = Counter(normalise(texts.texts[i]) for i in items)
    unique_share = sum(1 for i in items if counts[normalise(texts.texts[i])] == 1) / n
    probabilities = np.array(list(counts.values()), dtype=float) / n
    entropy = float(-(probabilities * np.log(probabilities)).sum())
    entropy_norm = entropy / math.log(n) if n > 1 else 1.0
    coverage = float(np.mean([len(texts.used[i]) / len(fields) for i in items]))
    return {
        "score": (unique_share + entropy_norm + coverage) / 3,
        "unique_share": unique_share,
        "entropy": entropy_norm,
        "coverage": coverage,
    }


def remaining_noise(texts: ItemTexts, item: int) -> list[str]:
    """Noise of ``item``'s raw values that the construction's cleaners did not remove."""
    clean = set(texts.construction.clean)
    # an empty text (no cleaner can fix it) always remains
    return [k for k in texts.noise[item] if NOISE_CLEANER.get(k.split(":", 1)[1]) not in clean]


def noise_ambiguity(texts: ItemTexts, items) -> dict:
    """Share of noisy texts, share of ambiguous texts, and their mean (the value)."""
    items = list(items)
    n = max(len(items), 1)
    kinds: Counter = Counter()
    noisy = 0
    for i in items:
        left = remaining_noise(texts, i)
        kinds.update(left)
        noisy += bool(left)
    groups = collision_groups(texts.texts, items)
    ambiguous = sum(len(g) for g in groups)
    return {
        "value": (noisy / n + ambiguous / n) / 2,
        "noisy_share": noisy / n,
        "ambiguous_share": ambiguous / n,
        "noisy_items": noisy,
        "noise_kinds": dict(sorted(kinds.items())),
        "collision_groups": len(groups),
        "ambiguous_items": ambiguous,
    }


def separator_collisions(
    kept: list[list[int]], item_texts: list[str], separator: str, items=None
) -> dict:
    """How often the separator also occurs inside the item texts of written histories.

    ``kept``: the items each history text holds. ``value`` is the share of histories with
    at least one such item (they cannot be split back into items); also the share of
    item slots and of the catalogue ``items`` (default: every item) with the separator.
    A separator of only whitespace is taken as given, otherwise stripped (", " -> ",").
    """
    mark = separator.strip() or separator
    colliding = np.array([bool(t) and mark in t for t in item_texts])
    colliding[:1] = False  # the padding item
    per_history = [int(colliding[k].sum()) if len(k) else 0 for k in kept]
    slots = sum(len(k) for k in kept)
    catalogue = np.arange(1, len(item_texts)) if items is None else np.asarray(list(items), int)
    return {
        "value": float(np.mean([c > 0 for c in per_history])) if kept else 0.0,
        "histories_with_collision": int(sum(c > 0 for c in per_history)),
        "histories": len(kept),
        "item_slots_with_separator": sum(per_history) / slots if slots else 0.0,
        "items_containing_separator": float(colliding[catalogue].mean()) if len(catalogue) else 0.0,
        "separator": mark,
    }


def length_stats(token_counts) -> dict:
    """Mean, median, 95th percentile and maximum of token counts."""
    counts = np.asarray(token_counts, dtype=float)
    if counts.size == 0:
        return {"mean": 0.0, "p50": 0.0, "p95": 0.0, "max": 0}
    return {
        "mean": float(counts.mean()),
        "p50": float(np.percentile(counts, 50)),
        "p95": float(np.percentile(counts, 95)),
        "max": int(counts.max()),
    }


def text_profile(rows: np.ndarray, field_shares: dict) -> dict:
    """What a domain's texts look like: token classes, field presence, mean length."""
    counts = rows[:, : len(TOKEN_CLASSES)]
    total = counts.sum() or 1.0
    return {
        "classes": counts.sum(axis=0) / total,
        "fields": field_shares,
        "length": float(counts.sum(axis=1).mean()) if len(rows) else 0.0,
    }


def profile_similarity(a: dict, b: dict) -> float:
    """1 minus the mean of three distances in [0, 1] between two :func:`text_profile`."""
    jsd = _jensen_shannon(a["classes"], b["classes"])
    names = sorted(set(a["fields"]) | set(b["fields"]))
    fields = (
        float(np.mean([abs(a["fields"].get(f, 0.0) - b["fields"].get(f, 0.0)) for f in names]))
        if names
        else 0.0
    )
    longest = max(a["length"], b["length"])
    length = abs(a["length"] - b["length"]) / longest if longest else 0.0
    return 1.0 - (jsd + fields + length) / 3


def _jensen_shannon(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen-Shannon divergence in bits (0 = identical, 1 = disjoint)."""
    m = (p + q) / 2

    def kl(x):
        mask = x > 0
        return float((x[mask] * np.log2(x[mask] / m[mask])).sum())

    return (kl(p) + kl(q)) / 2


def domain_consistency(profiles: dict[str, dict], centroids: dict[str, np.ndarray] | None):
    """Per-domain mean similarity to the other domains, and the overall mean.

    Returns ``(overall, {domain: value})``; ``(None, {})`` with fewer than two domains.
    """
    names = sorted(profiles)
    if len(names) < 2:
        return None, {}
    similarity = np.ones((len(names), len(names)))
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i < j:
                value = profile_similarity(profiles[a], profiles[b])
                if centroids is not None:
                    cosine = float(centroids[a] @ centroids[b])
                    cosine /= float(np.linalg.norm(centroids[a]) * np.linalg.norm(centroids[b]))
                    value = (value + max(cosine, 0.0)) / 2
                similarity[i, j] = similarity[j, i] = value
    per_domain = {
        name: float((similarity[i].sum() - 1) / (len(names) - 1)) for i, name in enumerate(names)
    }
    return float(np.mean(list(per_domain.values()))), per_domain
