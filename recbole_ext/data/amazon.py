"""Amazon review data (2018 release, JSON lines) to RecBole atomic files with item text.

Input: a category's review file (``<Category>.json[.gz]`` or ``<Category>_5.json[.gz]``: one
JSON object per line with ``reviewerID``, ``asin``, ``overall``, ``unixReviewTime``) and its
metadata file (``meta_<Category>.json[.gz]``: ``asin``, ``title``, ``brand``, ``category``,
...). Output, in ``<out>/<name>/``: ``<name>.inter``, ``<name>.item`` (``title``, ``brand``,
``categories``), ``<name>.yaml`` (the RecBole keys that load them) and
``conversion_summary.json``, which counts every record skipped and why.

Nothing is dropped silently: malformed lines, metadata without ``asin`` or ``title``,
repeated metadata, reviews missing a required key, reviews of items without metadata,
repeated (user, item) pairs and k-core removals are all counted, with up to five examples.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter, defaultdict
from pathlib import Path

from recbole_ext.data.atomic import write_atomic

REVIEW_KEYS = ("reviewerID", "asin", "overall", "unixReviewTime")
# RecBole splits token_seq values at seq_separator: '|' keeps multi-word categories whole
SEQ_SEPARATOR = "|"
EXAMPLES = 5


class _Skips:
    """Counts of skipped records per reason, with a few examples each."""

    def __init__(self):
        self.counts: Counter = Counter()
        self.examples: dict[str, list[str]] = defaultdict(list)

    def add(self, reason: str, example: str) -> None:
        self.counts[reason] += 1
        if len(self.examples[reason]) < EXAMPLES:
            self.examples[reason].append(example)

    def as_dict(self) -> dict:
        return {
            r: {"count": n, "examples": self.examples[r]} for r, n in sorted(self.counts.items())
        }


def _open(path: Path):
    if not path.is_file():
        raise FileNotFoundError(f"Amazon 2018 file not found: {path}")
    return (
        gzip.open(path, "rt", encoding="utf-8")
        if path.suffix == ".gz"
        else open(path, encoding="utf-8")
    )


def _records(path: Path, skips: _Skips, kind: str):
    """``(line number, object)`` of every parseable JSON-object line."""
    with _open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                skips.add(f"malformed_{kind}_line", f"{path.name}:{number}: {error.msg}")
                continue
            if not isinstance(record, dict):
                skips.add(f"malformed_{kind}_line", f"{path.name}:{number}: not a JSON object")
                continue
            yield number, record


def _text(value) -> str:
    """One atomic-file cell: no tabs, newlines or the sequence separator."""
    text = " ".join(str(value).split())
    return text.replace(SEQ_SEPARATOR, "/")


def read_metadata(path: Path, skips: _Skips) -> dict[str, dict]:
    """``{asin: {"title", "brand", "categories"}}`` of usable metadata lines."""
    items: dict[str, dict] = {}
    for number, record in _records(path, skips, "meta"):
        where = f"{path.name}:{number}"
        asin = record.get("asin")
        if not isinstance(asin, str) or not asin.strip():
            skips.add("meta_without_asin", where)
            continue
        title = _text(record.get("title") or "")
        if not title:
            skips.add("meta_missing_title", f"{where} ({asin})")
            continue
        if asin in items:
            skips.add("meta_repeated_asin", f"{where} ({asin}); the first is kept")
            continue
        categories = record.get("category") or []
        if not isinstance(categories, list):
            categories = [categories]
        items[asin] = {
            "title": title,
            "brand": _text(record.get("brand") or ""),
            "categories": SEQ_SEPARATOR.join(c for c in (_text(c) for c in categories) if c),
        }
    return items


def read_reviews(path: Path, items: dict[str, dict], skips: _Skips) -> list[tuple]:
    """``(user, asin, rating, time)`` of usable reviews, the first of repeated pairs kept."""
    seen: set[tuple[str, str]] = set()
    interactions = []
    for number, record in _records(path, skips, "review"):
        where = f"{path.name}:{number}"
        missing = [k for k in REVIEW_KEYS if k not in record]
        if missing:
            skips.add("review_missing_keys", f"{where}: no {missing}")
            continue
        user, asin = str(record["reviewerID"]), str(record["asin"])
        try:
            rating, when = float(record["overall"]), int(record["unixReviewTime"])
        except (TypeError, ValueError):
            skips.add("review_bad_value", f"{where}: overall/unixReviewTime not numbers")
            continue
        if asin not in items:
            skips.add("review_unknown_item", f"{where} ({asin})")
            continue
        if (user, asin) in seen:
            skips.add("review_repeated_pair", f"{where} ({user}, {asin})")
            continue
        seen.add((user, asin))
        interactions.append((user, asin, rating, when))
    return interactions


def k_core(interactions: list[tuple], k: int) -> list[tuple]:
    """Repeatedly drop users and items with fewer than ``k`` interactions."""
    while True:
        users = Counter(u for u, *_ in interactions)
        items = Counter(i for _, i, *_ in interactions)
        kept = [x for x in interactions if users[x[0]] >= k and items[x[1]] >= k]
        if len(kept) == len(interactions):
            return kept
        interactions = kept


def convert_amazon2018(reviews: Path, meta: Path, out_dir: Path, name: str, k: int = 5) -> dict:
    """Convert one category; returns (and writes) the conversion summary."""
    if k < 1:
        raise ValueError(f"k-core: expected k >= 1, got {k}")
    skips = _Skips()
    items = read_metadata(Path(meta), skips)
    interactions = read_reviews(Path(reviews), items, skips)
    before = len(interactions)
    interactions = k_core(interactions, k)
    used = sorted({i for _, i, *_ in interactions})
    folder = Path(out_dir) / name
    written_inter = write_atomic(
        folder / f"{name}.inter",
        ["user_id:token", "item_id:token", "rating:float", "timestamp:float"],
        sorted(interactions, key=lambda x: (x[0], x[3], x[1])),
    )
    written_items = write_atomic(
        folder / f"{name}.item",
        ["item_id:token", "title:token_seq", "brand:token", "categories:token_seq"],
        ([a, items[a]["title"], items[a]["brand"], items[a]["categories"]] for a in used),
    )
    (folder / f"{name}.yaml").write_text(
        f"# RecBole keys for the converted Amazon 2018 dataset '{name}'\n"
        f"data_path: {Path(out_dir).resolve()}\n"
        f"seq_separator: '{SEQ_SEPARATOR}'\n"
        "load_col:\n  inter: [user_id, item_id, rating, timestamp]\n"
        "  item: [item_id, title, brand, categories]\n"
    )
    summary = {
        "name": name,
        "reviews": str(reviews),
        "meta": str(meta),
        "k_core": k,
        "items_with_metadata": len(items),
        "interactions_before_k_core": before,
        "interactions_removed_by_k_core": before - len(interactions),
        "interactions": written_inter,
        "users": len({u for u, *_ in interactions}),
        "items": written_items,
        "skipped": skips.as_dict(),
    }
    (folder / "conversion_summary.json").write_text(json.dumps(summary, indent=1))
    return summary
