"""Synthetic ML-100K-shaped catalogues (titles, years, genres) for benchmarks and tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TITLE_WORDS = (
    "red",
    "blue",
    "night",
    "river",
    "city",
    "moon",
    "dark",
    "last",
    "great",
    "little",
    "king",
    "storm",
    "fire",
    "secret",
    "house",
    "road",
    "winter",
    "summer",
    "love",
    "war",
    "star",
    "girl",
    "boy",
    "man",
    "woman",
    "day",
    "year",
    "time",
    "world",
    "life",
)
GENRES = ("Action", "Comedy", "Drama", "Romance", "Thriller", "Horror", "Sci-Fi", "War")


def synthetic_items(
    n_items: int, rng: np.random.Generator, first_id: int = 1, words=TITLE_WORDS
) -> list[list[str]]:
    """``[item_id, title, year, genres]`` rows: a title of 3 of ``words`` (repeats happen
    in large catalogues; UPSR's text adaptation disambiguates them), a year and 1-2 genres."""
    rows = []
    for i in range(first_id, first_id + n_items):
        title = " ".join(rng.choice(words, 3)).title()
        genres = " ".join(sorted(set(rng.choice(GENRES, 2))))
        rows.append([str(i), title, str(1950 + i % 70), genres])
    return rows


def write_synthetic_catalogue(folder: Path, n_items: int, n_users: int, seed: int = 0) -> None:
    """``synthetic_items`` and 20 random interactions per user."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    lines += ["\t".join(row) for row in synthetic_items(n_items, rng)]
    (folder / f"{folder.name}.item").write_text("\n".join(lines) + "\n")
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for u in range(1, n_users + 1):
        for step, item in enumerate(rng.choice(n_items, 20, replace=False) + 1):
            lines.append(f"{u}\t{item}\t{u * 100 + step}")
    (folder / f"{folder.name}.inter").write_text("\n".join(lines) + "\n")
