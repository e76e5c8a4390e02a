"""The shuffled-history control and the history-free anchors of the UPSR comparison.

A model that ignores its input must fail the control and a model that reads the history
must pass it, measured with RecBole's real trainer on a dataset where the next item is a
function of the history (each user walks the catalogue one item at a time).
"""

from recbole_ext.compare import _run
from recbole_ext.ranks import mid_ranks, shuffled_history_control

import pytest
import torch


def test_a_model_that_ignores_the_history_fails_and_one_that_reads_it_passes():
    generator = torch.Generator().manual_seed(0)
    users, items = 60, 80
    targets = torch.randint(1, items, (users,), generator=generator)
    prior = torch.randn(1, items, generator=generator)
    ignoring = prior.repeat(users, 1)  # every user gets the same row
    control = shuffled_history_control(ignoring, targets)
    assert not control["passes"]
    assert control["control_hits@10"] == [control["hits@10"]] * 5
    assert control["row_correlation"] == pytest.approx(1.0, abs=1e-5)
    assert control["own_row_better_share"] == pytest.approx(0.5)

    reading = ignoring + 0.1 * torch.randn(users, items, generator=generator)
    reading[torch.arange(users), targets] += 3.0  # the history points at the held-out item
    control = shuffled_history_control(reading, targets)
    assert control["passes"] and control["hits@10"] == users
    assert max(control["control_hits@10"]) < users / 2
    assert control["own_row_better_share"] > 0.9


def test_shuffles_never_give_a_user_their_own_row_and_are_seeded():
    targets = torch.arange(5)
    scores = torch.zeros(5, 30)
    scores[targets, targets] = 10  # user u's row ranks item u first, every other item tied
    control = shuffled_history_control(scores, targets, shuffles=7, seed=3)
    assert control["hits@10"] == 5 and control["control_hits@10"] == [0] * 7
    assert control == shuffled_history_control(scores, targets, shuffles=7, seed=3)


def test_ties_rank_at_their_mean_position_and_unscored_items_miss():
    scores = torch.tensor([[0.0, 1.0, 1.0, 1.0, 2.0], [0.0, 1.0, float("-inf"), 0.5, 0.5]])
    # item 2 of row 0: one item above, two tied with it -> 1 + 1 + 2 / 2
    assert mid_ranks(scores, torch.tensor([2, 2])) == [3.0, float("inf")]


def _walk_dataset(root, users=120, items=30, length=12, seed=0):
    """Users walking the catalogue: each next item is the last one plus one (mod items)."""
    generator = torch.Generator().manual_seed(seed)
    folder = root / "walk"
    folder.mkdir(parents=True)
    lines = ["user_id:token\titem_id:token\ttimestamp:float"]
    for user in range(users):
        start = int(torch.randint(0, items, (1,), generator=generator))
        for step in range(length):
            lines.append(f"u{user}\ti{(start + step) % items}\t{step}")
    (folder / "walk.inter").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.slow
def test_the_comparison_flags_pop_and_passes_sasrec_with_recbole_trainer(tmp_path):
    data = _walk_dataset(tmp_path / "data")
    common = {"MAX_ITEM_LIST_LENGTH": 10, "seed": 2020}
    sasrec = {
        **common,
        "hidden_size": 32,
        "inner_size": 64,
        "n_layers": 1,
        "n_heads": 2,
        "epochs": 15,
        "train_batch_size": 128,
        "learning_rate": 5e-3,
        "stopping_step": 15,
    }
    result, compute = _run("SASRec", "walk", data, tmp_path / "SASRec", sasrec)
    assert compute["control"]["passes"], compute["control"]
    assert result["ndcg@10"] > 0.5  # the walk is learnable: the control is not vacuous
    for anchor in ("Pop", "ItemKNN"):
        result, compute = _run(anchor, "walk", data, tmp_path / anchor, {**common, "epochs": 1})
        # the anchors are tested on the sequential test loader: one held-out item per user
        ranks = (tmp_path / anchor / "test_ranks.jsonl").read_text().splitlines()
        assert len(ranks) == 120
        if anchor == "Pop":  # popularity is the same row for everyone: flagged
            assert not compute["control"]["passes"]
            assert compute["control"]["row_correlation"] == pytest.approx(1.0, abs=1e-5)
