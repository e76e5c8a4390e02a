"""What the UPSR comparison derives from saved rows without training: the cold-item subset
from per-user ranks, validation curves at equal training time, and the recipe table."""

import json
from collections import Counter

from recbole_ext.compare import (
    at_equal_training_time,
    best_within,
    cold_items,
    epoch_seconds_total,
    equal_time_caveats,
    score_users,
    validation_curve,
)
from recbole_ext.data.atomic import read_atomic
from recbole_ext.ranks import shuffled_history_control

import pytest
import torch
from conftest import load_tool


def _per_user(scores, targets, counts):
    """A row's ``per_user`` record as the comparison writes it, from score rows."""
    control = shuffled_history_control(scores, targets, keep_ranks=True)
    per_user = {
        "user": [str(u) for u in range(len(targets))],
        "item": [str(int(t)) for t in targets],
        "item_train_interactions": counts,
        "rank": control.pop("own_ranks"),
        "control_ranks": control.pop("control_ranks"),
    }
    return per_user, control


def test_every_user_kept_gives_the_rows_own_control():
    generator = torch.Generator().manual_seed(1)
    users, items = 40, 60
    targets = torch.randint(1, items, (users,), generator=generator)
    scores = torch.randn(users, items, generator=generator)
    scores[torch.arange(users), targets] += 2.0  # a model that reads the history
    per_user, control = _per_user(scores, targets, [0] * users)
    again = score_users(per_user, [True] * users)
    assert again["users"] == users
    for key in ("hits@10", "control_hits@10", "passes"):
        assert again[key] == control[key]
    for key in ("ndcg@10", "control_ndcg@10", "control_ndcg@10_sd", "own_row_better_share"):
        assert again[key] == pytest.approx(control[key], abs=1e-12)


def test_the_cold_item_subset_and_its_control():
    # users 0-3 have a cold held-out item the model ranks first; users 4-9 a popular item it
    # ranks 40th; a borrowed row ranks every item 50th
    counts = [0, 2, 5, 5, 6, 30, 50, 80, 90, 99]
    per_user = {
        "user": [f"u{i}" for i in range(10)],
        "item": [f"i{i}" for i in range(10)],
        "item_train_interactions": counts,
        "rank": [1, 1, 1, 1, 40, 40, 40, 40, 40, 40],
        "control_ranks": [[50] * 10, [50] * 10, [50] * 9 + [None]],
    }
    cold = cold_items(per_user)  # at most 5 training interactions
    assert cold["threshold"] == 5 and cold["users"] == 4
    assert cold["hits@10"] == 4 and cold["ndcg@10"] == pytest.approx(1.0)
    assert cold["control_hits@10"] == [0, 0, 0] and cold["control_ndcg@10"] == 0.0
    assert cold["own_row_better_share"] == 1.0 and cold["passes"]
    assert cold_items(per_user, threshold=0)["users"] == 1
    warm = score_users(per_user, [c > 5 for c in counts])
    assert warm["users"] == 6 and warm["hits@10"] == 0 and not warm["passes"]
    assert warm["own_row_better_share"] == 1.0  # 40 beats 50 and the unranked item
    assert cold_items(per_user, threshold=-1) == {"threshold": -1, "users": 0}


def test_curves_at_equal_training_time():
    upsr = {"curve": {"epoch_seconds": [100, 100, 100], "valid_epochs": [1, 2, 3]}}
    upsr["curve"]["valid_score"] = [0.01, 0.03, 0.02]
    sasrec = {"curve": {"epoch_seconds": [40] * 6, "valid_epochs": [2, 4, 6]}}
    sasrec["curve"]["valid_score"] = [0.02, 0.05, 0.06]  # validated every second epoch
    a, b = validation_curve(upsr), validation_curve(sasrec)
    assert a == [(100, 0.01), (200, 0.03), (300, 0.02)]
    assert b == [(80, 0.02), (160, 0.05), (240, 0.06)]
    assert best_within(a, 99) is None and best_within(a, 250) == 0.03
    compared = at_equal_training_time(a, b)
    assert compared == {
        "a_last_valid_seconds": 300,
        "b_last_valid_seconds": 240,
        "a_best": 0.03,
        "b_best": 0.06,
        "a_within_b_last_valid": 0.03,
        "b_within_a_last_valid": 0.06,
    }
    # SASRec trained a 7th epoch after its last validation: on no curve, in its total
    sasrec["curve"]["epoch_seconds"].append(40)
    assert validation_curve(sasrec)[-1] == (240, 0.06) and epoch_seconds_total(sasrec) == 280
    assert epoch_seconds_total({}) is None
    # a curve saved before valid_epochs: one validation per epoch when the counts match
    old = {"curve": {"epoch_seconds": [5, 5], "valid_score": [0.1, 0.2]}}
    assert validation_curve(old) == [(5, 0.1), (10, 0.2)]
    assert validation_curve({"curve": {"epoch_seconds": [5, 5], "valid_score": [0.2]}}) == []
    assert validation_curve({}) == []


def test_training_seconds_compare_only_on_the_same_users_threads_and_jobs():
    upsr = {"valid_users": 100, "threads": 1, "jobs": 1}
    assert equal_time_caveats(upsr, dict(upsr)) == []
    sasrec = {"valid_users": None, "threads": 2, "jobs": 2}  # every user validated
    assert equal_time_caveats(upsr, sasrec) == [
        "validation users differ (100 / all)",
        "threads differ (1 / 2)",
        "rows run at once (jobs) differ (1 / 2)",
    ]
    assert equal_time_caveats(upsr, {"valid_users": 100, "threads": 1}) == [
        "rows run at once (jobs) not recorded"
    ]


def test_ties_count_at_their_mean_rank_not_as_expected_hits():
    """A held-out item tied with 19 other items at the top: half the random tie-breaks put
    it in the top 10, but its mean rank, 10.5, is a miss at 10 (the tables say so)."""
    scores = torch.zeros(2, 21)
    scores[:, 0] = -float("inf")  # the padding column
    control = shuffled_history_control(scores, torch.tensor([1, 2]), keep_ranks=True)
    assert control["own_ranks"] == [10.5, 10.5] and control["hits@10"] == 0
    upsr_compare = load_tool("upsr_compare")
    caption = upsr_compare._caption(_results([]), "A table")
    assert "mean rank" in caption and "not the expected hits or NDCG" in caption


def _row(model, label, ndcg, per_user=None, **extra):
    row = {"model": model, "label": label, "seed": 2020, "ndcg@10": ndcg}
    row |= {m: ndcg for m in ("recall@10", "recall@20", "ndcg@20", "mrr@10", "mrr@20")}
    control = {"hits@10": 3, "control_ndcg@10": 0.01, "control_ndcg@10_sd": 0.002}
    control |= {"own_row_better_share": 0.7, "row_correlation": 0.5, "passes": True}
    control |= {"control_hits@10": [1, 1, 1, 1, 1], "ndcg@10": ndcg}
    return row | {"control": control, "per_user": per_user, "test_seconds": 1.5} | extra


def _results(rows):
    data = {"dataset": "ml100k-full", "users": 943, "items": 1682}
    return {"settings": {}, "data": data, "supervised": rows, "zero_shot": []}


def test_recipe_table_curve_and_rescore_from_saved_rows(tmp_path):
    upsr_compare = load_tool("upsr_compare")
    per_user = {
        "user": ["1", "2", "3"],
        "item": ["10", "20", "30"],
        "item_train_interactions": [1, 4, 60],
        "rank": [2, 30, 1],
        "control_ranks": [[40, 30, 5], [20, 25, 3]],
    }
    curve = {"epoch_seconds": [100.0, 120.0], "valid_epochs": [1, 2], "valid_score": [0.04, 0.03]}
    upsr = _row("UPSR", "unilm", 0.02, per_user, epochs=2, prefixes_per_user=12)
    upsr |= {"training_rows": 22632, "train_seconds": 220.0, "curve": curve}
    sasrec_curve = {"epoch_seconds": [30.0] * 4, "valid_epochs": [1, 2, 3, 4]}
    sasrec_curve["valid_score"] = [0.03, 0.05, 0.06, 0.06]
    sasrec = _row("SASRec", None, 0.05, per_user, epochs=4, prefixes_per_user=None)
    sasrec |= {"training_rows": 388684, "train_seconds": 120.0, "curve": sasrec_curve}
    upsr["valid_users"] = sasrec["valid_users"] = 100
    upsr["threads"] = sasrec["threads"] = 1
    upsr |= {"load_start": 1.04, "load_end": 1.96}  # jobs: from the run's settings below
    pop = _row("Pop", None, 0.017, per_user, epochs=1, training_rows=97171, train_seconds=1.0)
    (tmp_path / "new").mkdir()
    saved = _results([pop, sasrec, upsr]) | {"settings": {"jobs": 1}}
    (tmp_path / "new" / "results.json").write_text(json.dumps(saved))
    out = tmp_path / "table"
    argv = ["--rescore", str(tmp_path / "new"), "--cold-threshold", "4", "--out", str(out)]
    assert upsr_compare.main(argv) == 0
    tables = json.loads((out / "table.json").read_text())
    assert "over-seeds" not in tables  # one seed: the recipe table is the whole story
    recipe = {row[0]: row for row in tables["recipe"]["rows"]}
    assert recipe["UPSR (unilm)"][1:] == [
        "2 x 12 prefixes per user (22,632 rows), best validated epoch 1",
        3,
        0.02,
        [0.01, 0.002],
        0.7,
        "yes",
        220.0,
        1.5,
    ]
    assert recipe["SASRec"][1].startswith("4 x every prefix (388,684 rows), best validated epoch 3")
    assert recipe["Pop"][1] == "one pass over the training interactions"
    assert tables["recipe"]["command"][-1].endswith(f"--cold-threshold 4 --out {out}")
    # the cold items (at most 4 training interactions): users 1 and 2, own ranks 2 and 30
    cold = {row[0]: row for row in tables["cold-items"]["rows"]}
    assert cold["UPSR (unilm)"][1:3] == [2, 1]
    results = json.loads((out / "results.json").read_text())
    assert results["cold_items"]["threshold"] == 4
    assert results["cold_items"]["supervised"][0]["users"] == 2
    # the curves: UPSR's best within SASRec's 120 s is its first epoch's, SASRec's within
    # UPSR's 220 s its best (0.06 after 90 s); same users, threads and jobs: comparable
    (equal,) = tables["equal-training-time"]["rows"]
    assert equal == [
        "UPSR (unilm)",
        "SASRec",
        "yes",
        "100 / 100",
        "1 / 1",
        "1 / 1",
        "1.0 to 2.0 / not recorded",
        [220.0, 220.0],
        [120.0, 120.0],
        0.04,
        0.06,
        0.04,
        0.06,
    ]
    assert results["curves"]["SASRec"] == [[30.0, 0.03], [60.0, 0.05], [90.0, 0.06], [120.0, 0.06]]
    assert "Pop" not in results["curves"]  # an anchor validates on another protocol
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        "![validation NDCG@10 against training seconds](curve.png)"
        in (out / "report.md").read_text()
    )
    # the docs tool renders table.json as it is
    benchmark_tables = load_tool("benchmark_tables")
    docs = tmp_path / "docs" / "benchmarks" / "results"
    docs.mkdir(parents=True)
    (docs / "upsr.json").write_text(json.dumps({"paper": "upsr", "tables": tables}))
    stored = benchmark_tables.Results(tmp_path)
    text = benchmark_tables.render(stored, "upsr/recipe", "test")
    assert "| UPSR (unilm) | 2 x 12 prefixes per user" in text
    assert "| 3 | 0.0200 | 0.0100 ± 0.0020 | 0.70 | yes | 220 | 1.5 |" in text
    for table_id in tables:
        benchmark_tables.render(stored, f"upsr/{table_id}", "test")

    # a run saved before the per-user ranks: --rescore refuses, --merge leaves it out
    old = {k: v for k, v in upsr.items() if k not in ("per_user", "curve")} | {"label": "old"}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "results.json").write_text(json.dumps(_results([old])))
    with pytest.raises(ValueError, match="'UPSR \\(old\\)' .* no per-user ranks"):
        upsr_compare.main(["--rescore", str(tmp_path / "old"), "--out", str(tmp_path / "x")])
    merged = tmp_path / "merged"
    dirs = [str(tmp_path / "new"), str(tmp_path / "old")]
    assert upsr_compare.main(["--merge", *dirs, "--out", str(merged)]) == 0
    tables = json.loads((merged / "table.json").read_text())
    assert [row[0] for row in tables["recipe"]["rows"]] == [
        "Pop",
        "SASRec",
        "UPSR (unilm)",
        "UPSR (old)",
    ]
    assert "UPSR (old)" in tables["cold-items"]["note"]
    assert "UPSR (old)" not in [row[0] for row in tables["cold-items"]["rows"]]


def test_a_run_keeps_each_users_held_out_item_its_training_count_and_curve(tmp_path):
    upsr_compare = load_tool("upsr_compare")
    out = tmp_path / "out"
    argv = ["--models", "SASRec", "Pop", "--users", "20", "--last", "12"]
    argv += ["--baseline-epochs", "2", "--no-zero-shot", "--out", str(out)]
    assert upsr_compare.main(argv) == 0
    results = json.loads((out / "results.json").read_text())
    sasrec, pop = results["supervised"]
    # the training split: every interaction but each user's last two (validation and test)
    header, rows = read_atomic(out / "data" / "ml100k-slice" / "ml100k-slice.inter")
    when = [name.split(":")[0] for name in header].index("timestamp")
    by_user = {}
    for row in sorted(rows, key=lambda r: float(r[when])):
        by_user.setdefault(row[0], []).append(row[1])
    training = Counter(item for items in by_user.values() for item in items[:-2])
    for row in (sasrec, pop):
        per_user = row["per_user"]
        assert len(per_user["user"]) == 20
        for user, item, count in zip(
            per_user["user"], per_user["item"], per_user["item_train_interactions"], strict=True
        ):
            assert by_user[user][-1] == item and training[item] == count
        assert len(per_user["control_ranks"]) == 5
        assert all(len(ranks) == 20 for ranks in per_user["control_ranks"])
        everyone = score_users(per_user, [True] * 20)
        assert everyone["hits@10"] == row["control"]["hits@10"]
        assert everyone["control_ndcg@10"] == pytest.approx(row["control"]["control_ndcg@10"])
    logged = [json.loads(line) for line in (out / "SASRec" / "test_ranks.jsonl").open()]
    assert [r["rank"] for r in logged] == sasrec["per_user"]["rank"]  # no ties in SASRec
    assert sasrec["curve"]["valid_epochs"] == [1, 2] and len(sasrec["curve"]["valid_score"]) == 2
    assert sasrec["prefixes_per_user"] is None and sasrec["valid_users"] is None
    assert sasrec["jobs"] == 1 and sasrec["threads"] >= 1  # what its seconds ran with
    cold = results["cold_items"]["supervised"]
    assert [c["row"] for c in cold] == ["SASRec", "Pop"]
    expected = sum(training[item] <= 5 for item in sasrec["per_user"]["item"])
    assert cold[0]["users"] == expected


def test_cold_items_over_seeds(tmp_path):
    upsr_compare = load_tool("upsr_compare")
    rows = []
    for seed, cold_rank in ((1, 1), (2, 3)):
        per_user = {
            "user": ["1", "2", "3"],
            "item": ["10", "20", "30"],
            "item_train_interactions": [0, 3, 40],
            "rank": [cold_rank, 50, 1],
            "control_ranks": [[60, 60, 60], [70, 70, 70]],
        }
        row = _row("UPSR", None, 0.01 * seed, per_user, epochs=seed, prefixes_per_user=3)
        row["control"] = row["control"] | {"passes": seed == 1}  # a control failing one seed
        rows.append(row | {"seed": seed, "training_rows": 10, "train_seconds": 5.0 * seed})
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "results.json").write_text(json.dumps(_results(rows)))
    out = tmp_path / "out"
    assert upsr_compare.main(["--rescore", str(tmp_path / "run"), "--out", str(out)]) == 0
    tables = json.loads((out / "table.json").read_text())
    assert [row[0] for row in tables["cold-items"]["rows"]] == ["UPSR seed 1", "UPSR seed 2"]
    (summary,) = tables["cold-items-over-seeds"]["rows"]
    # two cold users a seed, the first ranked 1st (NDCG 1) or 3rd (NDCG 0.5), the other 50th
    assert summary[:4] == ["UPSR", 2, "2 / 2", "1 / 1"]
    assert summary[4] == pytest.approx([0.375, 0.125 * 2**0.5])
    assert summary[5] == [0.0, 0.0] and summary[6] == 1.0 and summary[7] == "yes"
    # the headline over seeds: metrics as mean ± sd, the control's verdict in every seed
    (over,) = tables["over-seeds"]["rows"]
    assert over[:2] == ["UPSR", 2]
    assert over[3] == pytest.approx([0.015, 0.005 * 2**0.5])  # NDCG@10 of 0.01 and 0.02
    assert over[6] == [0.01, 0.0] and over[9] == "1 of 2 seeds"
    assert over[10] == "1, 2" and over[11] == 7.5 and over[12] == 1.5
