"""behaviour sequence -> text sequence adaptation: a user's history as one input text.

A construction fixes the prompt wording (``{history}`` is replaced by the item texts), the
separator between items, their order, and how many of the most recent items are used.
The history is then cut, oldest items first, until prompt + items fit the token budget
(``history_token_budget``) measured with the model's tokenizer, special tokens included.
An item is never cut in the middle.
"""

from __future__ import annotations

from dataclasses import dataclass

from recbole_ext.text.item_text import check_spec_keys
from recbole_ext.text.tokenizer import TextTokenizer

ORDERS = ("oldest_first", "newest_first")


@dataclass
class HistoryTextConstruction:
    """One candidate way of writing a history.

    Args:
        name: Short name used in reports.
        prompt: Text around the history; must contain ``{history}`` once.
        separator: Put between item texts.
        order: ``oldest_first`` (reading order = time order) or ``newest_first``.
        max_items: How many of the most recent items are used at most.
    """

    name: str
    prompt: str = "{history}"
    separator: str = "; "
    order: str = "oldest_first"
    max_items: int = 50

    @classmethod
    def from_dict(cls, spec: dict, key: str = "history_text_candidates") -> HistoryTextConstruction:
        where = check_spec_keys(cls, spec, key, required=("name",))
        construction = cls(**spec)
        if construction.prompt.count("{history}") != 1:
            raise ValueError(f"{where}.prompt must contain '{{history}}' exactly once")
        if construction.order not in ORDERS:
            raise ValueError(f"{where}.order: {construction.order!r} is not one of {ORDERS}")
        if not isinstance(construction.max_items, int) or construction.max_items < 1:
            raise ValueError(f"{where}.max_items: expected a positive integer")
        return construction


class HistoryTextBuilder:
    """Writes histories under one construction within a token budget.

    Token counts of the prompt, the separator and every item text are measured once;
    WordPiece and sentencepiece both split at whitespace and punctuation, so the count of
    a joined history is the sum of its parts (checked by the tests against the tokenizer).

    Args:
        construction: The history construction.
        item_texts: Text of every internal item id (index 0 unused).
        tokenizer: The model's tokenizer.
        budget: ``history_token_budget``: tokens the encoder reads, special tokens included.

    Raises:
        ValueError: naming ``history_token_budget`` when the budget cannot hold the prompt
            plus the longest single item text.
    """

    def __init__(
        self,
        construction: HistoryTextConstruction,
        item_texts: list[str],
        tokenizer: TextTokenizer,
        budget: int,
    ):
        self.construction = construction
        self.item_texts = item_texts
        self.tokenizer = tokenizer
        self.budget = budget
        before, after = construction.prompt.split("{history}")
        self._before, self._after = before, after
        self.prompt_tokens = (
            tokenizer.count(before) + tokenizer.count(after) + tokenizer.special_tokens()
        )
        self.separator_tokens = tokenizer.count(construction.separator.strip())
        self.item_tokens = [tokenizer.count(t) if t else 0 for t in item_texts]
        longest = max(range(1, len(item_texts)), key=self.item_tokens.__getitem__, default=None)
        if longest is not None and self.prompt_tokens + self.item_tokens[longest] > budget:
            raise ValueError(
                f"history_token_budget={budget} is smaller than one item: history "
                f"construction {construction.name!r} needs {self.prompt_tokens} tokens for "
                f"its prompt and item {longest} ({item_texts[longest]!r}) "
                f"{self.item_tokens[longest]} more. Raise the budget or cap item texts with "
                "max_item_tokens."
            )

    def kept_items(self, history) -> list[int]:
        """The most recent items that fit, in time order."""
        recent = [int(i) for i in history[-self.construction.max_items :]]
        used = self.prompt_tokens
        kept: list[int] = []
        for item in reversed(recent):
            cost = self.item_tokens[item] + (self.separator_tokens if kept else 0)
            if used + cost > self.budget:
                break
            used += cost
            kept.append(item)
        return kept[::-1]

    def build(self, history) -> tuple[str, int]:
        """The history text and how many items it holds."""
        kept = self.kept_items(history)
        if self.construction.order == "newest_first":
            kept = kept[::-1]
        body = self.construction.separator.join(self.item_texts[i] for i in kept)
        return f"{self._before}{body}{self._after}", len(kept)

    def token_count(self, history) -> int:
        """Tokens of ``build(history)`` with special tokens, from the cached counts."""
        kept = self.kept_items(history)
        if not kept:
            return self.prompt_tokens
        items = sum(self.item_tokens[i] for i in kept)
        return self.prompt_tokens + items + self.separator_tokens * (len(kept) - 1)
