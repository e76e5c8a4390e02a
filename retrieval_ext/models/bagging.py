"""BagFormer's bagging layer: an entity dictionary matched over a caption's token ids.

The dictionary (one phrase per line) is tokenised once with the model's tokenizer and its
token-id sequences are loaded into a pyahocorasick automaton (integer sequence keys).
Outside entities every word piece is a bag of its own. Two rules (``bag_rule``):

- ``official``, the released BagFormer code: one left-to-right pass that extends the
  current bag by the next token while the extended token-id sequence is itself a
  dictionary entry, and otherwise starts a new bag at that token. So matching is exact on
  token ids, a 3+-token entity is found only if each of its prefixes of 2 or more tokens is
  an entry too ("red fire truck" needs "red fire"), and the leftmost match wins on
  overlaps, with no backtracking. Between two adjacent entities the released offsets hold
  one EMPTY bag: its embedding sum is the zero vector, it is not masked, so it counts in
  the bag-wise similarity (late fusion: as ``normalize(text_proj.bias)``; early fusion: as
  the encoder's output at a position whose input is zero).
- ``longest``: at each position the longest entity starting there is one bag (no prefix
  rule, no empty bags), the leftmost start first; matching resumes after it.

Results are cached per token-id sequence, so a caption seen again (every epoch, every
evaluation) is not matched again. ``bag_index`` turns a padded batch of token ids into a
bag number per token: 0 for [CLS] (its own bag, masked out of the bag-wise similarity),
1..n for the caption's bags in order (an empty bag is a number no token carries), -1 for
padding. :func:`pool_bags` sums token embeddings per bag.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

CACHE_SIZE = 1 << 16  # distinct captions whose matches are kept
BAG_RULES = ("official", "longest")
MASKED_BAG_MODES = ("official", "exclude")


@dataclass
class DictionaryReport:
    """What loading a dictionary file kept and what it left out (all 1-based lines)."""

    path: str
    entities: int = 0
    empty_lines: list[int] = field(default_factory=list)
    duplicates: list[tuple[int, str]] = field(default_factory=list)  # same token ids as before
    untokenizable: list[tuple[int, str]] = field(default_factory=list)  # no token at all
    single_token: list[tuple[int, str]] = field(default_factory=list)  # kept; a bag of one

    def problems(self) -> list[str]:
        """One readable line per kind of problem (empty when the file is clean)."""
        out = []
        if self.empty_lines:
            out.append(f"{len(self.empty_lines)} empty line(s): {self.empty_lines[:10]}")
        if self.duplicates:
            out.append(
                f"{len(self.duplicates)} duplicate(s) (line, phrase): {self.duplicates[:10]}"
            )
        if self.untokenizable:
            out.append(
                f"{len(self.untokenizable)} phrase(s) the tokenizer splits into nothing "
                f"(line, phrase): {self.untokenizable[:10]}"
            )
        return out


def read_dictionary_lines(path) -> list[tuple[int, str]]:
    """``(line number, stripped phrase)`` of a UTF-8 dictionary file, empty lines kept (as
    ``""``) so they can be reported; a byte sequence that is not UTF-8 is an error naming
    the file and line."""
    source = str(path)
    if "://" in source:
        raise ValueError(f"entity dictionary {source!r} is a URL; give a local file")
    path = Path(source).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"entity dictionary not found: {path} (one phrase per line)")
    lines = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as error:
            raise ValueError(
                f"entity dictionary {path}: line {number} is not UTF-8 ({error.reason} at "
                f"byte {error.start} of the line); save the file as UTF-8"
            ) from None
        lines.append((number, text.lstrip("\ufeff").strip()))
    return lines


class EntityBagger:
    """Entity bags over token ids, by the released rule or longest match (module docstring).

    Args:
        entities: token-id sequences of the dictionary's phrases.
        rule: ``official`` | ``longest``.
        cache_size: captions whose matches are memoised.
    """

    def __init__(
        self,
        entities: Sequence[Sequence[int]],
        rule: str = "official",
        cache_size: int = CACHE_SIZE,
    ):
        if rule not in BAG_RULES:
            raise ValueError(f"model.bag_rule: {rule!r} is not one of {', '.join(BAG_RULES)}")
        import ahocorasick  # here: importing the model package does not need it

        self.rule = rule
        self.automaton = ahocorasick.Automaton(ahocorasick.STORE_ANY, ahocorasick.KEY_SEQUENCE)
        self.num_entities = 0
        for ids in entities:
            key = tuple(int(i) for i in ids)
            if key and key not in self.automaton:
                self.automaton.add_word(key, len(key))
                self.num_entities += 1
        if self.num_entities:
            self.automaton.make_automaton()
        self.report: DictionaryReport | None = None
        self.spans = functools.lru_cache(maxsize=cache_size)(self._spans)

    @classmethod
    def from_file(
        cls, path, tokenizer, rule: str = "official", cache_size: int = CACHE_SIZE
    ) -> EntityBagger:
        """Tokenise a dictionary file once with ``tokenizer`` (no special tokens) and build
        the automaton. Empty lines, duplicates (same token ids) and phrases that tokenise to
        nothing are left out, logged and listed in ``bagger.report``; they are not fatal."""
        report = DictionaryReport(path=str(path))
        seen: set[tuple[int, ...]] = set()
        entities = []
        for number, phrase in read_dictionary_lines(path):
            if not phrase:
                report.empty_lines.append(number)
                continue
            ids = tuple(tokenizer(phrase, add_special_tokens=False)["input_ids"])
            if not ids:
                report.untokenizable.append((number, phrase))
            elif ids in seen:
                report.duplicates.append((number, phrase))
            else:
                seen.add(ids)
                entities.append(ids)
                if len(ids) == 1:
                    report.single_token.append((number, phrase))
        report.entities = len(entities)
        for problem in report.problems():
            logging.warning("entity dictionary %s: %s (left out)", path, problem)
        if not entities:
            logging.warning(
                "entity dictionary %s has no usable phrase: every bag is one token", path
            )
        bagger = cls(entities, rule=rule, cache_size=cache_size)
        bagger.report = report
        return bagger

    def _spans(self, ids: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
        """``(start, end)`` (end exclusive) of the entity bags of one token sequence."""
        if not self.num_entities:
            return ()
        if self.rule == "official":
            return self._official_spans(ids)
        longest = {}  # start -> longest end of an entity starting there
        for last, length in self.automaton.iter(ids):
            start = last - length + 1
            longest[start] = max(longest.get(start, 0), last + 1)
        spans, position = [], 0
        for start in sorted(longest):
            if start >= position:  # greedy: the leftmost match wins, then its longest
                spans.append((start, longest[start]))
                position = longest[start]
        return tuple(spans)

    def _official_spans(self, ids: tuple[int, ...]) -> tuple[tuple[int, int], ...]:
        """The released single pass: extend the current bag while the extension is an
        exact dictionary entry, else start a new bag at the token."""
        spans, start = [], 0
        for position in range(1, len(ids) + 1):
            if position < len(ids) and ids[start : position + 1] in self.automaton:
                continue
            if position - start > 1:
                spans.append((start, position))
            start = position
        return tuple(spans)

    def bags(self, ids: Sequence[int]) -> list[list[int]]:
        """The token positions of each bag of one sequence in order; under the ``official``
        rule an empty bag (``[]``) between two adjacent entities."""
        out, position = [], 0
        for start, end in self.spans(tuple(int(i) for i in ids)):
            if self.rule == "official" and 0 < position == start:  # adjacent entities
                out.append([])
            out += [[p] for p in range(position, start)]
            out.append(list(range(start, end)))
            position = end
        return out + [[p] for p in range(position, len(ids))]

    def bag_index(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Bag number of each token of a padded batch ``(B, L)``: 0 for the leading [CLS],
        1..n for the caption's bags in order, -1 for padding. An empty bag is a number no
        token carries (:func:`pool_bags` keeps it, with a zero sum)."""
        rows = []
        lengths = attention_mask.sum(1).tolist()
        for row, ids in enumerate(input_ids.tolist()):
            length = lengths[row]
            index = [0]
            for number, bag in enumerate(self.bags(ids[1:length]), start=1):
                index += [number] * len(bag)  # positions count from after [CLS]
            rows.append(index + [-1] * (len(ids) - len(index)))
        return torch.tensor(rows, dtype=torch.long, device=input_ids.device)

    def entity_bags(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Number of entity (multi-token or dictionary) bags per caption ``(B,)``."""
        lengths = attention_mask.sum(1).tolist()
        return torch.tensor(
            [
                len(self.spans(tuple(ids[1 : lengths[row]])))
                for row, ids in enumerate(input_ids.tolist())
            ]
        )


def token_bag_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Every token its own bag (the ``tokenwise`` ablation): 0 for [CLS], -1 for padding."""
    positions = torch.arange(attention_mask.size(1), device=attention_mask.device)
    return torch.where(attention_mask.bool(), positions.expand_as(attention_mask), -1)


def pool_bags(token_embeds: torch.Tensor, bag_index: torch.Tensor):
    """Sum token embeddings per bag.

    Args:
        token_embeds: ``(B, L, D)``.
        bag_index: ``(B, L)`` from :meth:`EntityBagger.bag_index` / :func:`token_bag_index`.

    Returns:
        ``(bags, present)``: ``(B, N, D)`` bag embeddings (bag 0 is [CLS]) and ``(B, N)``
        booleans, True for the row's bags 0..its largest number (an empty bag included,
        as a zero sum); ``N`` is the batch's largest bag count.
    """
    num_bags = int(bag_index.max()) + 1
    onehot = F.one_hot(bag_index.clamp(min=0), num_bags) * (bag_index >= 0).unsqueeze(-1)
    onehot = onehot.to(token_embeds.dtype)  # (B, L, N)
    bags = onehot.transpose(1, 2) @ token_embeds  # (B, N, D)
    numbers = torch.arange(num_bags, device=bag_index.device)
    return bags, numbers[None] <= bag_index.amax(1, keepdim=True)


def bagwise_similarity(
    text_bags: torch.Tensor,
    text_mask: torch.Tensor,
    image_tokens: torch.Tensor,
    image_mask: torch.Tensor | None = None,
    directions: str = "both",
    masked_bags: str = "official",
):
    """BagFormer's bag-wise MaxSim between every text and every image (no temperature).

    ``s_t2i[t, i]`` = sum over text t's bags of the max over image i's tokens of the dot
    product; ``s_i2t[i, t]`` = sum over image i's tokens of the max over text t's bags.
    Masked bags add nothing to ``s_t2i``. In ``s_i2t`` they are, with ``masked_bags:
    official``, zero vectors as in the released code (so a row with a masked bag clamps
    each image token's best score at 0); with ``exclude`` they never win a max. Masked
    image tokens never win a max and add nothing to a sum.

    Args:
        text_bags: ``(T, B, d)`` normalised bag embeddings.
        text_mask: ``(T, B)`` True for the bags that count.
        image_tokens: ``(I, V, d)`` normalised image token embeddings.
        image_mask: ``(I, V)`` True for the tokens that count (default all).
        directions: ``both``, or ``t2i`` alone (a text query; ``s_i2t`` is then None).
        masked_bags: ``official`` | ``exclude``, for ``s_i2t``.

    Returns:
        ``(s_t2i, s_i2t)`` of shapes ``(T, I)`` and ``(I, T)``.
    """
    if masked_bags not in MASKED_BAG_MODES:
        raise ValueError(
            f"model.i2t_masked_bags: {masked_bags!r} is not one of {', '.join(MASKED_BAG_MODES)}"
        )
    if directions == "t2i":  # a query: one matmul, no mask pass when every token counts
        return _bagwise_t2i(text_bags, text_mask.bool(), image_tokens, image_mask), None
    if image_mask is None:
        image_mask = torch.ones(
            image_tokens.shape[:2], dtype=torch.bool, device=image_tokens.device
        )
    text_mask, image_mask = text_mask.bool(), image_mask.bool()
    sim = torch.einsum("tbd,ivd->tibv", text_bags, image_tokens)  # (T, I, B, V)
    lowest = torch.finfo(sim.dtype).min
    # text -> image: each bag's best image token
    best_token = sim.masked_fill(~image_mask[None, :, None, :], lowest).amax(-1)  # (T, I, B)
    best_token = torch.where(image_mask.any(-1)[None, :, None], best_token, 0.0)
    s_t2i = (best_token * text_mask[:, None, :]).sum(-1)
    # image -> text: each image token's best bag
    masked_value = 0.0 if masked_bags == "official" else lowest
    best_bag = sim.masked_fill(~text_mask[:, None, :, None], masked_value).amax(2)  # (T, I, V)
    best_bag = torch.where(text_mask.any(-1)[:, None, None], best_bag, 0.0)
    s_i2t = (best_bag * image_mask[None]).sum(-1).t()
    return s_t2i, s_i2t


def _bagwise_t2i(text_bags, text_mask, image_tokens, image_mask=None) -> torch.Tensor:
    """``s_t2i`` of :func:`bagwise_similarity` laid out for speed: ``(T*B, d) @ (d, I*V)``
    viewed as ``(T, B, I, V)``, so the max over an image's tokens reads contiguous memory."""
    (texts, bags, dim), (images, tokens) = text_bags.shape, image_tokens.shape[:2]
    sim = (text_bags.reshape(-1, dim) @ image_tokens.reshape(-1, dim).t()).view(
        texts, bags, images, tokens
    )
    if image_mask is not None and not bool(image_mask.all()):
        image_mask = image_mask.bool()
        sim = sim.masked_fill(~image_mask[None, None], torch.finfo(sim.dtype).min)
        best_token = torch.where(image_mask.any(-1)[None, None], sim.amax(-1), 0.0)
    else:
        best_token = sim.amax(-1)  # (T, B, I)
    return (best_token * text_mask[:, :, None]).sum(1)


def chunked_bagwise_similarity(
    text_bags,
    text_mask,
    image_tokens,
    image_mask=None,
    max_elements: int = 32_000_000,
    directions: str = "both",
    masked_bags: str = "official",
):
    """:func:`bagwise_similarity` over chunks of texts and of images, so that the
    ``(texts, images, bags, tokens)`` product of a chunk holds at most ``max_elements``
    values. Each image chunk is moved to the texts' device and dtype first, so a gallery
    kept on the CPU in float16 is scored in float32 on the model's device."""
    bags, tokens = text_bags.shape[1], image_tokens.shape[1]
    if bags * tokens > max_elements:
        raise ValueError(
            f"max_elements={max_elements} is below one text and one image "
            f"({bags} bags x {tokens} tokens = {bags * tokens} values)"
        )
    num_texts, num_images = text_bags.shape[0], image_tokens.shape[0]
    image_step = max(1, min(num_images, max_elements // (bags * tokens)))
    text_step = max(1, min(num_texts, max_elements // (image_step * bags * tokens)))
    t2i = torch.empty(num_texts, num_images, device=text_bags.device, dtype=text_bags.dtype)
    i2t = None if directions == "t2i" else torch.empty_like(t2i.t())
    for i in range(0, num_images, image_step):
        images = image_tokens[i : i + image_step].to(text_bags.device, text_bags.dtype)
        masks = None if image_mask is None else image_mask[i : i + image_step].to(images.device)
        for t in range(0, num_texts, text_step):
            a, b = bagwise_similarity(
                text_bags[t : t + text_step],
                text_mask[t : t + text_step],
                images,
                masks,
                directions,
                masked_bags,
            )
            t2i[t : t + text_step, i : i + image_step] = a
            if i2t is not None:
                i2t[i : i + image_step, t : t + text_step] = b
    return t2i, i2t
