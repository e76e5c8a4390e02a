"""An entity dictionary derived from a caption corpus, for BagFormer's bagging layer when a
user has none: word collocations found by NLTK's collocation finders (bigrams, optionally
trigrams), kept by count and association score thresholds; the coverage a dictionary
gives a corpus under the model's own tokenizer and bagging; and how many captions the two
bagging rules bag differently.

Words are lowercased and split with NLTK's ``wordpunct_tokenize`` (a regular expression:
no model data needed); punctuation is dropped; n-grams are counted within a caption, never
across two. A candidate containing a stop word (``stopwords``) is left out. Languages
written without spaces (Chinese) need a word-segmented corpus first.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path

from retrieval_ext.datasets.image_text import _captions, read_records
from retrieval_ext.models.bagging import BAG_RULES, EntityBagger

from nltk.collocations import (
    BigramAssocMeasures,
    BigramCollocationFinder,
    TrigramAssocMeasures,
    TrigramCollocationFinder,
)
from nltk.tokenize import wordpunct_tokenize

MEASURES = ("likelihood_ratio", "pmi", "chi_sq", "student_t")
# function words that make poor entity boundaries (English); --stopwords replaces the list
DEFAULT_STOPWORDS = [
    "a",
    "an",
    "the",
    "and",
    "or",
    "of",
    "at",
    "on",
    "in",
    "to",
    "with",
    "by",
    "for",
    "from",
    "is",
    "are",
    "was",
    "were",
    "be",
    "there",
    "this",
    "that",
    "it",
    "its",
    "as",
    "next",
    "near",
]
WORD = re.compile(r"\w", re.UNICODE)


def read_caption_corpus(paths: Sequence[str | Path]) -> list[str]:
    """Captions from LAVIS annotation files (``.json`` list or ``.jsonl``, ``caption`` a
    string or a list) or plain text (``.txt``, one caption a line)."""
    captions: list[str] = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"caption corpus not found: {path}")
        if path.suffix == ".txt":
            captions += [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
            continue
        for line, record in read_records(path):
            where = f"{path}, line {line}"
            if not isinstance(record, dict) or "caption" not in record:
                raise ValueError(f"{where}: expected an object with a 'caption'")
            captions += _captions(record, where)
    captions = [c for c in captions if c]
    if not captions:
        raise ValueError(f"no caption in {', '.join(map(str, paths))}")
    return captions


def words(caption: str) -> list[str]:
    """Lowercased word tokens of a caption (punctuation dropped)."""
    return [w for w in wordpunct_tokenize(caption.lower()) if WORD.search(w)]


def derive_entities(
    captions: Iterable[str],
    min_count: int = 5,
    measure: str = "likelihood_ratio",
    min_score: float | None = None,
    top: int | None = None,
    trigrams: bool = False,
    stopwords: Iterable[str] = DEFAULT_STOPWORDS,
) -> list[tuple[str, int, float]]:
    """Collocations of a corpus as ``(phrase, count, score)``, best score first.

    Args:
        captions: the corpus.
        min_count: captions-internal occurrences an n-gram needs.
        measure: NLTK association measure (``MEASURES``).
        min_score: keep n-grams scoring at least this (None: no score threshold).
        top: keep at most this many per n-gram size (None: all).
        trigrams: also find three-word phrases.
        stopwords: an n-gram with any of these words is left out.
    """
    if measure not in MEASURES:
        raise ValueError(f"measure {measure!r} is not one of {', '.join(MEASURES)}")
    documents = [words(c) for c in captions]
    stop = set(stopwords)
    found = []
    finders = [(BigramCollocationFinder, BigramAssocMeasures)]
    if trigrams:
        finders.append((TrigramCollocationFinder, TrigramAssocMeasures))
    for finder_cls, measures in finders:
        finder = finder_cls.from_documents(documents)
        finder.apply_freq_filter(min_count)
        finder.apply_word_filter(lambda w: w in stop)
        scored = finder.score_ngrams(getattr(measures, measure))
        if min_score is not None:
            scored = [(ngram, s) for ngram, s in scored if s >= min_score]
        if top is not None:
            scored = scored[:top]
        found += [(" ".join(ngram), finder.ngram_fd[ngram], float(s)) for ngram, s in scored]
    return sorted(found, key=lambda item: -item[2])


def dictionary_coverage(captions: Sequence[str], bagger, tokenizer, max_length: int = 64) -> dict:
    """How a dictionary bags a corpus under the model's tokenizer: the share of captions
    with at least one entity bag, entity bags per caption, tokens per entity bag, and the
    mean bag size over all bags (entity and single-token; [CLS] and [SEP] not counted)."""
    with_entity = entity_bags = entity_tokens = bags = tokens = 0
    for caption in captions:
        ids = tokenizer(caption, add_special_tokens=False, truncation=True, max_length=max_length)
        ids = tuple(ids["input_ids"])
        spans = bagger.spans(ids)
        with_entity += bool(spans)
        entity_bags += len(spans)
        covered = sum(end - start for start, end in spans)
        entity_tokens += covered
        bags += len(spans) + len(ids) - covered
        tokens += len(ids)
    n = len(captions)
    return {
        "captions": n,
        "captions_with_entity_bag": with_entity,
        "share_with_entity_bag": with_entity / n,
        "entity_bags_per_caption": entity_bags / n,
        "mean_tokens_per_entity_bag": entity_tokens / entity_bags if entity_bags else 0.0,
        "mean_bag_size": tokens / bags if bags else 0.0,
    }


def compare_bag_rules(captions: Sequence[str], path, tokenizer, max_length: int = 64) -> dict:
    """How many captions the ``official`` and ``longest`` bagging rules bag differently under
    one dictionary file: in their bags (an empty bag counted), in their entity spans alone,
    and the empty bags the official rule puts between adjacent entities."""
    baggers = {rule: EntityBagger.from_file(path, tokenizer, rule=rule) for rule in BAG_RULES}
    bags_differ = spans_differ = empty_bags = 0
    for caption in captions:
        ids = tokenizer(caption, add_special_tokens=False, truncation=True, max_length=max_length)
        ids = tuple(ids["input_ids"])
        official, longest = baggers["official"], baggers["longest"]
        bags_differ += official.bags(ids) != longest.bags(ids)
        spans_differ += official.spans(ids) != longest.spans(ids)
        empty_bags += sum(not bag for bag in official.bags(ids))
    return {
        "captions": len(captions),
        "bagged_differently": bags_differ,
        "entity_spans_differ": spans_differ,
        "empty_bags_official": empty_bags,
    }
