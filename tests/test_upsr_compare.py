"""The full-data comparison path and the training-cost options UPSR runs on a CPU with."""

import importlib.util
import json
import sys
import unittest.mock

from recbole_ext.data.atomic import read_atomic
from recbole_ext.data.loaders import PrefixSampleTrainDataLoader, data_preparation
from recbole_ext.data.ml100k_domains import bundled_ml100k, write_user_slice
from recbole_ext.data.synthetic import write_synthetic_catalogue
from recbole_ext.text import report as upsr_text
from recbole_ext.text.adaptation import TextAdaptation

import numpy as np
import pytest
import yaml
from recbole.config import Config
from recbole.data import create_dataset

from plugins.paths import CONFIG_DIR, REPO_ROOT

UPSR_TEXT = CONFIG_DIR / "recbole" / "upsr_text.yaml"


def test_every_user_with_at_most_last_interactions_never_raises(tmp_path):
    # the README's `--users 943 --last 50`: 375 users have fewer than 50 ratings; they keep all
    info = write_user_slice(bundled_ml100k(), tmp_path, "capped", 943, 50)
    assert info["users"] == 943 and info["items"] <= 1682
    _, rows = read_atomic(tmp_path / "capped" / "capped.inter")
    per_user = {}
    for row in rows:
        per_user[row[0]] = per_user.get(row[0], 0) + 1
    assert len(per_user) == 943 and max(per_user.values()) == 50 and min(per_user.values()) == 20
    everything = write_user_slice(bundled_ml100k(), tmp_path, "full", None, None)
    assert everything == {
        "dataset": "full",
        "users": 943,
        "last": None,
        "interactions": 100000,
        "items": 1682,
    }


def sequential_config(data_path, dataset, **overrides):
    settings = {
        "data_path": str(data_path),
        "load_col": {"inter": ["user_id", "item_id", "timestamp"]},
        "loss_type": "CE",
        "train_neg_sample_args": None,
        "MAX_ITEM_LIST_LENGTH": 10,
        "train_batch_size": 16,
        "show_progress": False,
        "seed": 7,
        **overrides,
    }
    with unittest.mock.patch.object(sys, "argv", sys.argv[:1]):
        config = Config(model="SASRec", dataset=dataset, config_dict=settings)
    return config, create_dataset(config)


def drawn_epoch(loader):
    rows = []
    for batch in loader:
        rows += list(zip(batch["user_id"].tolist(), batch["item_length"].tolist(), strict=True))
    return rows


def test_prefixes_per_user_are_redrawn_each_epoch_from_seed_and_epoch(tmp_path):
    write_synthetic_catalogue(tmp_path / "shop", n_items=40, n_users=12)
    config, dataset = sequential_config(
        tmp_path, "shop", train_prefixes_per_user=3, MAX_ITEM_LIST_LENGTH=50
    )
    train, valid, test = data_preparation(config, dataset)
    assert isinstance(train, PrefixSampleTrainDataLoader)
    first, second = drawn_epoch(train), drawn_epoch(train)
    assert train.sample_size == 12 * 3 == len(first) == len(second)
    for epoch in (first, second):
        users, counts = np.unique([u for u, _ in epoch], return_counts=True)
        assert len(users) == 12 and set(counts) == {3}
        assert len(set(epoch)) == len(epoch)  # distinct prefixes within an epoch
    assert set(first) != set(second)  # drawn afresh
    again = PrefixSampleTrainDataLoader(config, train._dataset, None, shuffle=True)
    assert set(drawn_epoch(again)) == set(first)  # same seed, same epoch: same prefixes
    # validation and test untouched without valid_users
    assert len(valid._dataset) == len(test._dataset) == 12


def test_validation_on_a_seeded_user_subset_and_test_on_every_user(tmp_path):
    write_synthetic_catalogue(tmp_path / "shop", n_items=40, n_users=12)
    config, dataset = sequential_config(tmp_path, "shop", valid_users=5)
    train, valid, test = data_preparation(config, dataset)
    assert not isinstance(train, PrefixSampleTrainDataLoader)
    users = [int(batch[0]["user_id"].unique().numel()) for batch in valid]
    assert sum(users) == 5 and len(test._dataset) == 12
    config, dataset = sequential_config(tmp_path, "shop", valid_users=5)
    _, again, _ = data_preparation(config, dataset)
    assert (
        again._dataset.inter_feat["user_id"].tolist()
        == valid._dataset.inter_feat["user_id"].tolist()
    )
    config, dataset = sequential_config(tmp_path, "shop", valid_users=0.5)
    with pytest.raises(ValueError, match="valid_users"):
        data_preparation(config, dataset)


def test_a_128_token_budget_still_has_a_history_candidate_on_ml100k(tmp_path):
    small = tmp_path / "b.yaml"
    small.write_text(
        yaml.safe_dump(
            {
                "history_token_budget": 128,
                "text_consistency_embedder": "none",
                "text_indicator_users": 200,
            }
        )
    )
    config, dataset = upsr_text.load_config_and_dataset("ml-100k", [UPSR_TEXT, small])
    report = TextAdaptation(config, log=lambda _: None).evaluate(dataset)
    for stage in ("pretrain", "finetune"):
        chosen = next(
            h
            for h in report["history_candidates"][stage]
            if h["name"] == report["chosen"][stage]["history"]
        )
        assert chosen["eligible"] and chosen["indicators"]["text_length"]["max"] <= 128


def test_compare_tool_keeps_max_item_list_length_apart_from_the_slice(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "upsr_compare", REPO_ROOT / "tools" / "upsr_compare.py"
    )
    upsr_compare = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(upsr_compare)
    out = tmp_path / "out"
    argv = ["--models", "SASRec", "--users", "20", "--last", "30"]
    argv += ["--max-item-list-length", "7", "--baseline-epochs", "1", "--no-zero-shot"]
    assert upsr_compare.main([*argv, "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["data"]["users"] == 20 and results["data"]["last"] == 30
    (row,) = results["supervised"]
    assert row["epochs"] == 1 and row["train_seconds"] > 0 and row["test_seconds"] > 0
    config = json.loads((out / "SASRec" / "config.json").read_text())
    assert config["MAX_ITEM_LIST_LENGTH"] == 7 and config["seed"] == 2020
    ranks = [json.loads(line)["rank"] for line in (out / "SASRec" / "test_ranks.jsonl").open()]
    assert len(ranks) == 20
    assert sum(r <= 10 for r in ranks) / 20 == pytest.approx(row["recall@10"], abs=1e-4)
    # metrics from the logged ranks, on the users every file shares (a part-way test)
    rank_tool = importlib.util.spec_from_file_location(
        "upsr_rank_metrics", REPO_ROOT / "tools" / "upsr_rank_metrics.py"
    )
    rank_metrics = importlib.util.module_from_spec(rank_tool)
    rank_tool.loader.exec_module(rank_metrics)
    ranks = rank_metrics.read_ranks(out / "SASRec" / "test_ranks.jsonl")
    from_ranks = rank_metrics.metrics(list(ranks.values()))
    for key in ("recall@10", "ndcg@10", "mrr@20"):
        assert from_ranks[key] == pytest.approx(row[key], abs=1e-4)
    # a run stopped by a deadline: its saved checkpoint is tested, with its recorded curve
    assert upsr_compare.main([*argv, "--test-saved", "--out", str(out)]) == 0
    (again,) = json.loads((out / "results.json").read_text())["supervised"]
    assert again["stopped_before_fit_returned"] and again["epochs"] == 1
    assert again["ndcg@10"] == pytest.approx(row["ndcg@10"])
