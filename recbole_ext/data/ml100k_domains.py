"""Disjoint domains cut from ML-100K by genre, written as ordinary RecBole datasets.

Each item goes to the domain holding most of its genres (ties: the domain listed first), so
the domains share users but no items: pre-train on some, fine-tune or test zero-shot on
another whose items the pre-trained model never saw.
"""

from __future__ import annotations

from pathlib import Path

from recbole_ext.data.atomic import column, read_atomic, write_atomic
from recbole_ext.text.dataset import domain_of

# the genre groups of configs/recbole/upsr_text.yaml (text_domains)
GENRE_DOMAINS = {
    "action": ["Action", "Adventure", "Sci-Fi", "Fantasy", "War", "Western"],
    "comedy": ["Comedy", "Romance", "Musical", "Children's", "Animation"],
    "drama": ["Drama", "Crime", "Thriller", "Mystery", "Horror", "Film-Noir", "Documentary"],
}


def bundled_ml100k() -> Path:
    """RecBole's own copy of ML-100K (shipped in its wheel)."""
    import recbole

    return Path(recbole.__file__).parent / "dataset_example" / "ml-100k"


def write_genre_domains(
    out_dir: Path,
    source: Path | None = None,
    groups: dict[str, list[str]] | None = None,
    genre_field: str = "class",
    prefix: str = "ml-100k",
) -> dict[str, dict]:
    """Write ``<out_dir>/<prefix>-<domain>/<prefix>-<domain>.{inter,item}`` per domain.

    Returns per domain the counts written, plus ``"unassigned"``: items whose genres are in
    no group, and the interactions dropped with them.
    """
    source = source or bundled_ml100k()
    groups = groups or GENRE_DOMAINS
    item_path = source / f"{source.name}.item"
    inter_path = source / f"{source.name}.inter"
    item_header, items = read_atomic(item_path)
    inter_header, inters = read_atomic(inter_path)
    item_id = column(item_header, "item_id", item_path)
    genres = column(item_header, genre_field, item_path)
    inter_item = column(inter_header, "item_id", inter_path)
    inter_user = column(inter_header, "user_id", inter_path)

    names = list(groups)
    domain_of_item = {}
    for row in items:
        d = domain_of(row[genres].split(), groups)
        domain_of_item[row[item_id]] = names[d] if d >= 0 else None
    summary: dict[str, dict] = {}
    for name in names:
        dataset = f"{prefix}-{name}"
        folder = out_dir / dataset
        kept_items = [row for row in items if domain_of_item[row[item_id]] == name]
        kept_inters = [row for row in inters if domain_of_item.get(row[inter_item]) == name]
        write_atomic(folder / f"{dataset}.item", item_header, kept_items)
        write_atomic(folder / f"{dataset}.inter", inter_header, kept_inters)
        summary[name] = {
            "dataset": dataset,
            "items": len(kept_items),
            "interactions": len(kept_inters),
            "users": len({row[inter_user] for row in kept_inters}),
        }
    unassigned = {i for i, d in domain_of_item.items() if d is None}
    summary["unassigned"] = {
        "items": sorted(unassigned),
        "interactions": sum(row[inter_item] in unassigned for row in inters),
    }
    return summary
