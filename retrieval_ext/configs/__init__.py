"""Default LAVIS yaml files of retrieval_ext (a package so that wheels ship them)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def default_config_path(owner: str, kind: str, table: dict, key: str, folder: str) -> str:
    """``ROOT/<folder>/<table[key]>``; an unknown ``key`` is a ``KeyError`` naming
    ``owner``, what ``kind`` of key it is and the known keys (LAVIS asserts instead)."""
    if key not in table:
        raise KeyError(f"{owner}: unknown {kind} {key!r}; available: {sorted(table)}")
    return str(ROOT / folder / table[key])
