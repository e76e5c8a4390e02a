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


def write_user_slice(
    source: Path,
    out_dir: Path,
    name: str,
    users: int | None,
    last: int | None,
    seed: int = 2020,
) -> dict:
    """A RecBole dataset of ``users`` seeded users (``None``: every user), each with at
    most their ``last`` latest interactions (``None``: all of them), and the items those
    touch. Users with fewer than 3 interactions are left out: leave-one-out needs a training,
    a validation and a test item.
    """
    source = Path(source)
    item_path = source / f"{source.name}.item"
    inter_path = source / f"{source.name}.inter"
    item_header, items = read_atomic(item_path)
    inter_header, inters = read_atomic(inter_path)
    user = column(inter_header, "user_id", inter_path)
    item = column(inter_header, "item_id", inter_path)
    when = column(inter_header, "timestamp", inter_path)
    by_user: dict[str, list] = {}
    for row in inters:
        by_user.setdefault(row[user], []).append(row)
    eligible = sorted((u for u, rows in by_user.items() if len(rows) >= 3), key=_natural)
    if users is None:
        users = len(eligible)
    if len(eligible) < users:
        raise ValueError(
            f"{inter_path}: only {len(eligible)} users have >= 3 interactions "
            f"(leave-one-out needs 3), {users} were asked for"
        )
    import numpy as np

    if users == len(eligible):
        chosen = np.arange(users)  # every user: no draw
    else:
        chosen = np.random.default_rng(seed).choice(len(eligible), users, replace=False)
    kept = []
    for index in sorted(chosen):
        rows = sorted(by_user[eligible[index]], key=lambda r: float(r[when]))
        kept += rows[-last:] if last else rows
    used = {row[item] for row in kept}
    item_id = column(item_header, "item_id", item_path)
    kept_items = [row for row in items if row[item_id] in used]
    folder = Path(out_dir) / name
    write_atomic(folder / f"{name}.inter", inter_header, kept)
    write_atomic(folder / f"{name}.item", item_header, kept_items)
    return {
        "dataset": name,
        "users": users,
        "last": last,
        "interactions": len(kept),
        "items": len(kept_items),
    }


def _natural(token: str):
    return (0, int(token), token) if token.isdigit() else (1, 0, token)
