"""Item fields, user histories and domains read from a loaded RecBole dataset."""

from __future__ import annotations

from recbole_ext.text.item_text import ItemTable

import numpy as np
from recbole.utils import FeatureType

TEXT_TYPES = (FeatureType.TOKEN, FeatureType.TOKEN_SEQ)


def item_table_from_dataset(
    dataset, fields: list[str] | None = None, list_fields: list[str] = ()
) -> ItemTable:
    """The text-capable item fields of a RecBole ``Dataset`` as an :class:`ItemTable`.

    ``token`` fields give one string per item. RecBole splits a ``token_seq`` value at
    ``seq_separator``: for a field in ``list_fields`` (e.g. genres) the pieces stay a list
    of values; for any other (e.g. a title split into words) they are joined back with
    spaces.
    Raises a ``ValueError`` naming the dataset when it has no text field at all, and a
    ``KeyError`` naming the field when ``fields`` asks for one that was not loaded.
    """
    name = dataset.dataset_name
    item_feat = dataset.item_feat
    if item_feat is None:
        raise ValueError(
            f"dataset {name!r} has no item features: its .item file is missing or "
            "load_col['item'] is not set; UPSR needs item text fields"
        )
    iid = dataset.iid_field
    candidates = [
        f for f in item_feat.columns if f != iid and dataset.field2type.get(f) in TEXT_TYPES
    ]
    if not candidates:
        raise ValueError(
            f"dataset {name!r} has no text field: its loaded item fields are "
            f"{[f for f in item_feat.columns if f != iid]} and none is token or token_seq"
        )
    wanted = fields if fields is not None else candidates
    missing = [f for f in wanted if f not in item_feat.columns]
    if missing:
        raise KeyError(
            f"item_text_fields: {missing} not in dataset {name!r}; loaded item fields: "
            f"{[f for f in item_feat.columns if f != iid]}. Add them to load_col['item']."
        )
    not_text = [f for f in wanted if dataset.field2type.get(f) not in TEXT_TYPES]
    if not_text:
        raise ValueError(
            f"item_text_fields: {not_text} of dataset {name!r} are not token/token_seq fields"
        )
    values = {}
    n = dataset.item_num
    for f in wanted:
        vocab = dataset.field2id_token[f]
        column = _column(item_feat, f)
        if dataset.field2type[f] == FeatureType.TOKEN:
            column = column.astype(np.int64)
            values[f] = [None if column[i] == 0 else str(vocab[column[i]]) for i in range(n)]
        else:
            pieces = [[str(vocab[int(t)]) for t in column[i] if t != 0] or None for i in range(n)]
            values[f] = pieces if f in list_fields else [p and " ".join(p) for p in pieces]
        values[f][0] = None  # the padding item
    item_tokens = [str(t) for t in dataset.field2id_token[iid]]
    return ItemTable(dataset=name, item_tokens=item_tokens, values=values)


def user_histories(dataset) -> list[np.ndarray]:
    """Each user's internal item ids in time order (RecBole's own sort of inter_feat)."""
    inter = dataset.inter_feat
    users = _column(inter, dataset.uid_field)
    items = _column(inter, dataset.iid_field)
    if dataset.time_field and dataset.time_field in inter.columns:
        order = np.lexsort((_column(inter, dataset.time_field), users))
    else:
        order = np.argsort(users, kind="stable")
    users, items = users[order], items[order]
    bounds = np.flatnonzero(np.diff(users)) + 1
    return np.split(items, bounds)


def _column(feat, field: str) -> np.ndarray:
    """A column of a feature table: a pandas frame before ``dataset.build()``, an
    ``Interaction`` of padded tensors after it."""
    column = feat[field]
    return column.numpy() if hasattr(column, "numpy") else np.asarray(column)


def assign_domains(table: ItemTable, field: str, groups: dict[str, list[str]]) -> np.ndarray:
    """Disjoint domains of items from a multi-valued field (e.g. ML-100K's genres).

    Each item goes to the group holding the most of its values; ties go to the group
    listed first. Items with no value in any group get -1. Returns the group index per
    internal item id (``-1`` for the padding id).
    """
    if field not in table.values:
        raise KeyError(
            f"text_domains.field: {field!r} not in dataset {table.dataset!r}; loaded "
            f"fields: {sorted(table.values)}"
        )
    domain = np.full(len(table), -1, dtype=np.int64)
    for item in range(1, len(table)):
        raw = table.values[field][item]
        domain[item] = domain_of(raw if isinstance(raw, list) else [raw] if raw else [], groups)
    return domain


def domain_of(values, groups: dict[str, list[str]]) -> int:
    """Index of the group holding most of ``values`` (first on ties), -1 if none."""
    hits = [len(set(values) & set(members)) for members in groups.values()]
    best = max(hits, default=0)
    return hits.index(best) if best > 0 else -1
