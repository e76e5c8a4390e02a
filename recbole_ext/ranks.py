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


def mid_ranks(scores: torch.Tensor, target: torch.Tensor) -> list[float]:
    """``target_ranks`` with ties at their mean position: a held-out item tied with ``t``
    other items ranks ``1 + higher + t / 2``, the expected rank under a random tie-break
    (a model that scores many items alike, as Pop does, is neither flattered nor punished).
    Metrics of that one rank are not the expected metrics under a random tie-break (an item
    tied with 19 others at the top has mean rank 10.5, a miss at 10, where half the
    tie-breaks hit), so for heavily tied rows they differ from that expectation and from
    RecBole's metrics (which break ties in its top-k order)."""
    own = scores.gather(1, target[:, None].to(scores.device))
    higher = (scores > own).sum(dim=1).float()
    tied = (scores == own).sum(dim=1).float() - 1
    ranks = 1 + higher + tied / 2
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


def shuffled_history_control(
    scores: torch.Tensor,
    targets: torch.Tensor,
    shuffles: int = 5,
    seed: int = 0,
    k: int = 10,
    keep_ranks: bool = False,
) -> dict:
    """Does a model use the history? Rank each user's held-out item with another user's score
    row, and compare with the user's own row.

    ``scores [U, n_items]`` are the test users' full-sort score rows (the held-out item of
    user ``u`` is ``targets[u]``). Each of the ``shuffles`` seeded derangements gives every
    user another user's row; a model whose scores ignore the history loses nothing (its rows
    are alike), a model that reads the history loses hits. Ranks are ``mid_ranks`` (ties
    at their mean position), so hits can differ slightly from RecBole's where scores tie.
    Returns hits@k and NDCG@k with the own rows and per shuffle, the share of users whose
    own row ranks their item better than the borrowed row (mean over shuffles; ties count
    half), the mean Pearson correlation of a user's row with the borrowed row, and
    ``passes``: the own NDCG@k is above the shuffles' mean by more than twice their sample
    standard deviation. With ``keep_ranks``, also every user's own rank (``own_ranks``) and
    rank with the borrowed row of each shuffle (``control_ranks``, one list per shuffle), so
    a subset of the users can be scored afterwards.
    """
    users = scores.size(0)
    if users < 2:
        raise ValueError("shuffled_history_control: needs at least two test users")
    targets = targets.to(scores.device)

    def measured(rows: torch.Tensor):
        ranks = mid_ranks(scores[rows], targets)
        metrics = rank_metrics(ranks, ks=(k,))
        return ranks, round(metrics[f"recall@{k}"] * users), metrics[f"ndcg@{k}"]

    own_ranks, own_hits, own_ndcg = measured(torch.arange(users))
    generator = torch.Generator().manual_seed(seed)
    hits, ndcgs, better, correlations, control_ranks = [], [], [], [], []
    # correlation over real items (column 0 is padding), unscored items at the row's minimum
    real = scores[:, 1:].float()
    floor = torch.where(torch.isfinite(real), real, real.new_tensor(math.inf)).amin(dim=1)
    real = torch.where(torch.isfinite(real), real, floor[:, None])
    centred = real - real.mean(dim=1, keepdim=True)
    norms = centred.norm(dim=1)
    centred = centred / norms.clamp(min=1e-12)[:, None]
    for _ in range(shuffles):
        order = torch.randperm(users, generator=generator)
        borrowed = torch.empty(users, dtype=torch.long)
        borrowed[order] = order.roll(-1)  # a cycle through a random order: nobody keeps theirs
        ranks, shuffle_hits, shuffle_ndcg = measured(borrowed)
        hits.append(shuffle_hits)
        ndcgs.append(shuffle_ndcg)
        control_ranks.append(ranks)
        wins = sum((a < b) + 0.5 * (a == b) for a, b in zip(own_ranks, ranks, strict=True))
        better.append(wins / users)
        pearson = (centred * centred[borrowed]).sum(dim=1)
        # a constant row (every item scored alike) correlates 1 with an equal row, else 0
        constant = (norms == 0) | (norms[borrowed] == 0)
        same = (real == real[borrowed]).all(dim=1).float()
        correlations.append(float(torch.where(constant, same, pearson).mean()))
    mean = sum(ndcgs) / shuffles
    spread = (
        math.sqrt(sum((x - mean) ** 2 for x in ndcgs) / (shuffles - 1)) if shuffles > 1 else 0.0
    )
    control = {
        f"hits@{k}": own_hits,
        f"ndcg@{k}": own_ndcg,
        f"control_hits@{k}": hits,
        f"control_ndcg@{k}": mean,
        f"control_ndcg@{k}_sd": spread,
        "own_row_better_share": sum(better) / shuffles,
        "row_correlation": sum(correlations) / shuffles,
        "passes": own_ndcg > mean + 2 * spread,
    }
    if keep_ranks:
        control.update(own_ranks=own_ranks, control_ranks=control_ranks)
    return control
