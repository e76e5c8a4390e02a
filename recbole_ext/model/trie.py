"""A prefix trie of item token sequences, to constrain beam search to real items."""

from __future__ import annotations


class ItemTrie:
    """Token sequences (each ending with EOS) of every item, and which item each spells.

    Args:
        sequences: ``{item_id: token ids ending with EOS}``; they must be distinct, which the
            text adaptation's disambiguation guarantees.
    """

    def __init__(self, sequences: dict[int, list[int]]):
        self.root: dict = {}
        self.items: dict[tuple[int, ...], int] = {}
        for item, tokens in sequences.items():
            key = tuple(tokens)
            if key in self.items:
                raise ValueError(
                    f"items {self.items[key]} and {item} have the same text tokens; enable "
                    "disambiguation in the item text construction"
                )
            self.items[key] = item
            node = self.root
            for token in tokens:
                node = node.setdefault(token, {})

    def allowed(self, prefix) -> list[int]:
        """Tokens that continue ``prefix`` towards some item (empty when none does)."""
        node = self.root
        for token in prefix:
            node = node.get(int(token))
            if node is None:
                return []
        return list(node)

    def item(self, tokens) -> int | None:
        """The item spelled by ``tokens`` (through its EOS), or ``None``."""
        return self.items.get(tuple(int(t) for t in tokens))
