"""Several RecBole atomic datasets mixed into one, for multi-domain pre-training.

RecBole trains on one dataset at a time; mixing the source domains into one dataset lets
its own trainer pre-train UPSR on all of them. By default user and item ids are prefixed
with the source dataset's name (``ml-100k-action:242``), because ids of different
platforms mean different things; ``keep_ids`` keeps them (domains cut from one dataset,
whose users are the same people).
"""

from __future__ import annotations

from pathlib import Path

from recbole_ext.data.atomic import column, read_atomic, write_atomic

ID_FIELDS = {"inter": ("user_id", "item_id"), "item": ("item_id",)}


def mix_datasets(sources: list[Path], out_dir: Path, name: str, keep_ids: bool = False) -> dict:
    """Write ``<out_dir>/<name>/<name>.{inter,item}`` from dataset folders ``sources``.

    Every source must have the same ``.inter`` and ``.item`` headers (a ``ValueError``
    names the first file that differs). Returns the counts per source and in total.
    """
    if len(sources) < 2:
        raise ValueError(f"mixing needs at least two datasets, got {len(sources)}")
    headers: dict[str, list[str]] = {}
    rows: dict[str, list] = {"inter": [], "item": []}
    summary: dict[str, dict] = {}
    seen_items: dict[str, str] = {}
    for source in map(Path, sources):
        counts = {}
        for kind in ("inter", "item"):
            path = source / f"{source.name}.{kind}"
            if not path.is_file():
                raise FileNotFoundError(
                    f"{path}: missing (every mixed dataset needs .inter and .item)"
                )
            header, data = read_atomic(path)
            if headers.setdefault(kind, header) != header:
                raise ValueError(
                    f"{path}: header {header} differs from the first dataset's {headers[kind]}"
                )
            ids = [column(header, f, path) for f in ID_FIELDS[kind]]
            for row in data:
                if not keep_ids:
                    for i in ids:
                        row[i] = f"{source.name}:{row[i]}"
                if kind == "item":
                    item = row[ids[0]]
                    if item in seen_items:
                        raise ValueError(
                            f"{path}: item {item!r} is also in {seen_items[item]}; with keep_ids "
                            "the datasets' items must be disjoint"
                        )
                    seen_items[item] = source.name
            rows[kind] += data
            counts[kind] = len(data)
        summary[source.name] = {"interactions": counts["inter"], "items": counts["item"]}
    folder = Path(out_dir) / name
    summary["total"] = {
        "interactions": write_atomic(folder / f"{name}.inter", headers["inter"], rows["inter"]),
        "items": write_atomic(folder / f"{name}.item", headers["item"], rows["item"]),
    }
    return summary
