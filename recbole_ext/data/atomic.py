"""Reading and writing RecBole atomic files (tab-separated, ``name:type`` headers)."""

from __future__ import annotations

import csv
from pathlib import Path


def read_atomic(path: Path) -> tuple[list[str], list[list[str]]]:
    """Header (``name:type`` cells) and rows of an atomic file."""
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader, None)
        if not header:
            raise ValueError(f"{path}: empty atomic file (expected a 'name:type' header)")
        bad = [cell for cell in header if ":" not in cell]
        if bad:
            raise ValueError(f"{path}: header cells {bad} are not of the form 'name:type'")
        rows = list(reader)
    for number, row in enumerate(rows, 2):
        if len(row) != len(header):
            raise ValueError(
                f"{path}, line {number}: {len(row)} tab-separated values, header has {len(header)}"
            )
    return header, rows


def write_atomic(path: Path, header: list[str], rows) -> int:
    """Write an atomic file; values must not contain tabs or newlines. Returns the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        f.write("\t".join(header) + "\n")
        for row in rows:
            f.write("\t".join(str(v) for v in row) + "\n")
            count += 1
    return count


def column(header: list[str], name: str, path: Path) -> int:
    """Index of field ``name`` in ``header``; a ``KeyError`` naming the file if absent."""
    names = [cell.split(":", 1)[0] for cell in header]
    if name not in names:
        raise KeyError(f"{path}: no field {name!r}; fields are {names}")
    return names.index(name)
