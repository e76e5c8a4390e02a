"""The held-out item's rank per test user, and Recall / NDCG / MRR @K from those ranks.

Leave-one-out: one relevant item per user, so a rank is 1 + the items scored strictly
higher, which gives RecBole's numbers when no score ties the held-out one. A held-out item
with no score (``-inf``: generative full sort did not write it) has rank ``inf``, a miss at
every K.
"""

from __future__ import annotations

import math

import torch


def target_ranks(scores: torch.Tensor, target: torch.Tensor) -> list[float]:
    """Per row of ``scores`` ``[B, n_items]``, the rank of item ``target[b]``."""
    own = scores.gather(1, target[:, None].to(scores.device))
    ranks = ((scores > own).sum(dim=1) + 1).float()
    return torch.where(torch.isfinite(own[:, 0]), ranks, math.inf).tolist()


def rank_metrics(ranks, ks=(10, 20)) -> dict[str, float]:
    """Recall@K, NDCG@K and MRR@K over the users' ranks (``inf``: a miss)."""
    n = len(ranks)
    out = {}
    for k in ks:
        hit = [r for r in ranks if r <= k]
        out[f"recall@{k}"] = len(hit) / n
        out[f"ndcg@{k}"] = sum(1 / math.log2(r + 1) for r in hit) / n
        out[f"mrr@{k}"] = sum(1 / r for r in hit) / n
    return out


def rank_to_json(rank: float) -> int | None:
    """A rank as strict JSON: an integer, or ``null`` for a held-out item never ranked."""
    return None if math.isinf(rank) else int(rank)


def rank_from_json(value) -> float:
    return math.inf if value is None else float(value)
