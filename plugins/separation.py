"""Whether a demo table can tell its rows apart, and the note the report prints when not.

A demo stage trains each model once on a small generated or sliced dataset, so two rows
can differ by less than chance moves them. Two sources of chance are checked:

- the seed spread: where rows carry a standard deviation over seeds, two rows whose
  difference is within the sum of their standard deviations are not separated;
- the evaluation set: a metric that averages a per-item score in [0, 1] over ``n`` test
  items (a recall, a top-1 accuracy, an NDCG) has a standard error of at most
  ``sqrt(p (1 - p) / n)`` at mean ``p``; two rows whose difference is within twice the
  standard error of that difference are not separated at this evaluation size. The bound
  is conservative: the rows are scored on the same items, which a paired test would use.

An evaluation set of fewer than ``TINY`` items is flagged whatever the rows' values.
"""

from __future__ import annotations

import math
from itertools import combinations

from plugins.report import StageResult

TINY = 30  # fewer test items than this: one item moves a metric by more than 3%
CONFIG_KEY = "too_small_to_separate"  # where a stage's notes go in results.json


def _fmt(value: float, scale: float) -> str:
    return f"{value:.1f}" if scale == 100 else f"{value:.3f}"


def separation_notes(
    rows: list[dict],
    metric: str,
    n: int,
    *,
    scale: float = 1.0,
    pairs: list[tuple[str, str]] | None = None,
    spread: dict[str, float] | None = None,
    items: str = "test items",
    key: str = "model",
) -> list[str]:
    """Sentences naming each pair of rows that this setting cannot tell apart.

    Args:
        rows: The stage's table rows.
        metric: The column compared, a mean of per-item scores in ``[0, scale]``.
        n: How many items the metric averages over (test queries, clips, users).
        scale: 1 for a fraction, 100 for a percentage.
        pairs: ``(row, row)`` names to compare; all pairs when ``None``.
        spread: ``{row name: standard deviation over seeds}`` where rows have several
            seeds (in the metric's units).
        items: What the ``n`` items are, for the sentence.
        key: The column naming each row.

    Returns:
        One sentence per pair not separated, and one first when ``n`` is under ``TINY``;
        an empty list when every pair is separated.
    """
    values = {row[key]: float(row[metric]) for row in rows}
    notes = []
    if n < TINY:
        notes.append(
            f"The evaluation set is tiny: {n} {items}, so one item moves {metric} by "
            f"{_fmt(scale / max(n, 1), scale)}."
        )
    for a, b in pairs if pairs is not None else list(combinations(values, 2)):
        difference = abs(values[a] - values[b])
        said = f"{a} and {b} differ by {_fmt(difference, scale)} in {metric}"
        if spread and a in spread and b in spread:
            allowed = spread[a] + spread[b]
            if difference <= allowed:
                notes.append(
                    f"{said}, within the seed spread (standard deviations "
                    f"{_fmt(spread[a], scale)} and {_fmt(spread[b], scale)})."
                )
                continue
        p, q = values[a] / scale, values[b] / scale
        error = math.sqrt((p * (1 - p) + q * (1 - q)) / max(n, 1)) * scale
        if difference <= 2 * error:
            notes.append(
                f"{said}, within twice the standard error of a difference over {n} {items} "
                f"({_fmt(2 * error, scale)}): this setting cannot tell them apart."
            )
    return notes


def flag(result: StageResult, notes: list[str]) -> StageResult:
    """Add ``notes`` to the stage's report paragraph and record them in its config under
    ``CONFIG_KEY`` (an empty list: every compared pair is separated at this size)."""
    result.config[CONFIG_KEY] = list(notes)
    if notes:
        result.summary += "\n\n**Too small to separate the rows:** " + " ".join(notes)
    return result
