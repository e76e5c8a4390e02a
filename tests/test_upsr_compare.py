"""The full-data comparison path and the training-cost options UPSR runs on a CPU with."""

import json
import sys
import unittest.mock

from recbole_ext.compare import CompareSettings, summarise, upsr_overrides
from recbole_ext.data.atomic import read_atomic
from recbole_ext.data.loaders import PrefixSampleTrainDataLoader, data_preparation
from recbole_ext.data.ml100k_domains import bundled_ml100k, write_user_slice
from recbole_ext.data.synthetic import write_synthetic_catalogue
from recbole_ext.ranks import rank_metrics
from recbole_ext.text import report as upsr_text
from recbole_ext.text.adaptation import TextAdaptation

import numpy as np
import pytest
import torch
import yaml
from conftest import load_tool
from recbole.config import Config
from recbole.data import create_dataset

from plugins.paths import CONFIG_DIR

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


def test_test_users_tests_a_seeded_subset_for_ablations(tmp_path):
    write_synthetic_catalogue(tmp_path / "shop", n_items=40, n_users=12)
    config, dataset = sequential_config(tmp_path, "shop", test_users=4, valid_users=6)
    _, valid, test = data_preparation(config, dataset)
    tested = test._dataset.inter_feat["user_id"].tolist()
    assert len(tested) == 4 and len(valid._dataset) == 6
    config, dataset = sequential_config(tmp_path, "shop", test_users=4, seed=8)
    _, _, other = data_preparation(config, dataset)
    assert len(other._dataset) == 4
    assert other._dataset.inter_feat["user_id"].tolist() != tested  # drawn from the seed
    config, dataset = sequential_config(tmp_path, "shop", test_users=-1)
    with pytest.raises(ValueError, match="test_users"):
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
    upsr_compare = load_tool("upsr_compare")
    out = tmp_path / "out"
    baselines = tmp_path / "baselines.yaml"
    baselines.write_text(yaml.safe_dump({"SASRec": {"train_batch_size": 64}}))
    argv = ["--models", "SASRec", "--users", "20", "--last", "30", "--label", "small"]
    argv += ["--max-item-list-length", "7", "--baseline-epochs", "1", "--no-zero-shot"]
    argv += ["--baseline-config", str(baselines)]
    assert upsr_compare.main([*argv, "--out", str(out)]) == 0
    results = json.loads((out / "results.json").read_text())
    assert results["data"]["users"] == 20 and results["data"]["last"] == 30
    (row,) = results["supervised"]
    assert row["epochs"] == 1 and row["train_seconds"] > 0 and row["test_seconds"] > 0
    assert row["label"] == "small"
    config = json.loads((out / "SASRec" / "config.json").read_text())
    assert config["MAX_ITEM_LIST_LENGTH"] == 7 and config["seed"] == 2020
    assert config["train_batch_size"] == 64 and config["stopping_step"] == 10
    progress = json.loads((out / "SASRec" / "progress.json").read_text())
    assert len(progress["epoch_seconds"]) == len(progress["valid_seconds"]) == 1
    assert 0 < progress["epoch_seconds"][0] <= row["train_seconds"]
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"GRU4Rec": {"epochs": 1}}))
    with pytest.raises(ValueError, match="bad.yaml: expected"):
        upsr_compare.main([*argv[:-1], str(bad), "--out", str(tmp_path / "bad")])
    ranks = [json.loads(line)["rank"] for line in (out / "SASRec" / "test_ranks.jsonl").open()]
    assert len(ranks) == 20
    assert sum(r <= 10 for r in ranks) / 20 == pytest.approx(row["recall@10"], abs=1e-4)
    # metrics from the logged ranks, on the users every file shares (a part-way test)
    ranks = load_tool("upsr_rank_metrics").read_ranks(out / "SASRec" / "test_ranks.jsonl")
    from_ranks = rank_metrics(list(ranks.values()))
    for key in ("recall@10", "ndcg@10", "mrr@20"):
        assert from_ranks[key] == pytest.approx(row[key], abs=1e-4)
    # a run stopped by a deadline: its saved checkpoint is tested, with its recorded curve
    assert upsr_compare.main([*argv, "--test-saved", "--out", str(out)]) == 0
    (again,) = json.loads((out / "results.json").read_text())["supervised"]
    assert again["stopped_before_fit_returned"] and again["epochs"] == 1
    assert again["ndcg@10"] == pytest.approx(row["ndcg@10"])


@pytest.mark.slow
def test_jobs_run_rows_in_processes_with_the_same_results(tmp_path):
    upsr_compare = load_tool("upsr_compare")
    argv = ["--models", "SASRec", "Pop", "--seeds", "2020", "2021", "--users", "16"]
    argv += ["--last", "20", "--baseline-epochs", "2", "--no-zero-shot"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same thread count in this process and the workers
    try:
        assert upsr_compare.main([*argv, "--out", str(tmp_path / "one")]) == 0
        assert upsr_compare.main([*argv, "--jobs", "2", "--out", str(tmp_path / "two")]) == 0
    finally:
        torch.set_num_threads(threads)
    one, two = (
        json.loads((tmp_path / name / "results.json").read_text()) for name in ("one", "two")
    )
    assert two["settings"]["jobs"] == 2
    keys = [(r["model"], r["seed"]) for r in two["supervised"]]
    assert keys == [(r["model"], r["seed"]) for r in one["supervised"]]  # table order
    assert keys == [("SASRec", 2020), ("SASRec", 2021), ("Pop", 2020), ("Pop", 2021)]
    for a, b in zip(one["supervised"], two["supervised"], strict=True):
        assert b["threads"] == 1 and b["epochs"] == a["epochs"]
        for metric in ("recall@10", "ndcg@10", "mrr@20"):
            assert b[metric] == pytest.approx(a[metric], abs=1e-6)
    with pytest.raises(ValueError, match="jobs"):
        upsr_compare.main([*argv, "--jobs", "0", "--out", str(tmp_path / "bad")])


@pytest.mark.parametrize("upsr_config", [None, "upsr_ml100k_cpu.yaml"])
def test_compare_keeps_the_text_domains_so_the_stages_choose_different_texts(upsr_config):
    # the comparison's own UPSR keys (over upsr_text.yaml), at the default budget and the
    # CPU config's 128 tokens; with text_domains None both stages chose the same texts
    settings = CompareSettings(
        upsr_config=str(CONFIG_DIR / "recbole" / upsr_config) if upsr_config else None
    )
    keys = {**upsr_overrides(settings), "text_indicator_users": 300}
    config, dataset = upsr_text.load_config_and_dataset("ml-100k", [UPSR_TEXT], keys)
    report = TextAdaptation(config, log=lambda _: None).evaluate(dataset)
    assert report["domains"] == {"action": 378, "comedy": 598, "drama": 704}
    pretrain, finetune = report["chosen"]["pretrain"], report["chosen"]["finetune"]
    assert pretrain != finetune
    assert pretrain["item"] != finetune["item"]


def test_domains_absent_from_a_dataset_are_left_out(tmp_path):
    # a dataset cut to one genre domain (zero-shot target): the other domains have no item
    from recbole_ext.data.ml100k_domains import write_genre_domains

    write_genre_domains(tmp_path)
    config, dataset = upsr_text.load_config_and_dataset(
        "ml-100k-drama",
        [UPSR_TEXT],
        {"data_path": str(tmp_path), "text_consistency_embedder": "none"},
    )
    adaptation = TextAdaptation(config, log=lambda _: None)
    assert list(adaptation.domains(adaptation.item_table(dataset))) == ["drama"]


def test_summary_over_seeds_and_merged_runs(tmp_path):
    rows = [
        {"model": "SASRec", "seed": s, "epochs": e, "training_rows": 10, "train_seconds": 2.0}
        | {m: v for m in ("recall@10", "ndcg@10", "mrr@10", "recall@20", "ndcg@20", "mrr@20")}
        for s, e, v in ((1, 3, 0.1), (2, 4, 0.2), (3, 5, 0.3))
    ]
    rows.append({**rows[0], "label": "longer", "seed": 1})
    summary = {s["model"]: s for s in summarise(rows)}
    assert set(summary) == {"SASRec", "SASRec (longer)"}
    ndcg = summary["SASRec"]["ndcg@10"]
    assert ndcg["mean"] == pytest.approx(0.2) and ndcg["std"] == pytest.approx(0.1)
    assert (ndcg["min"], ndcg["max"]) == (0.1, 0.3) and summary["SASRec"]["epochs"] == [3, 4, 5]
    assert summary["SASRec (longer)"]["ndcg@10"]["std"] == 0.0
    upsr_compare = load_tool("upsr_compare")
    data = {"dataset": "ml100k-full", "users": 943}
    for name, part in (("a", rows[:2]), ("b", rows[2:])):
        (tmp_path / name).mkdir()
        results = {"settings": {"run": name}, "data": data, "supervised": part, "zero_shot": []}
        (tmp_path / name / "results.json").write_text(json.dumps(results))
    out = tmp_path / "merged"
    assert (
        upsr_compare.main(["--merge", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)])
        == 0
    )
    merged = json.loads((out / "results.json").read_text())
    assert len(merged["supervised"]) == 4 and len(merged["merged_from"]) == 2
    assert "0.2000 ± 0.1000" in (out / "report.md").read_text()
    (tmp_path / "c").mkdir()
    other = {"settings": {}, "data": {**data, "users": 60}, "supervised": [], "zero_shot": []}
    (tmp_path / "c" / "results.json").write_text(json.dumps(other))
    with pytest.raises(ValueError, match="different data"):
        upsr_compare.merge([tmp_path / "a", tmp_path / "c"])


@pytest.mark.slow
@pytest.mark.parametrize("architecture", ["encoder-decoder", "unilm"])
def test_zero_shot_reads_the_target_with_the_pretraining_texts(tmp_path, architecture):
    # no fine-tuning: the target is written the way the model was pre-trained; the unilm
    # recipe comes through upsr_config as in the supervised rows
    from recbole_ext.compare import random_ranking, run_comparison

    folder = CONFIG_DIR / "recbole" / "upsr_ablations"
    recipe = [str(CONFIG_DIR / "recbole" / "upsr_ml100k_cpu.yaml"), str(folder / "curve.yaml")]
    settings = CompareSettings(
        models=[],
        users=20,
        last=8,
        epochs=1,
        baseline_epochs=2,
        backbone="tiny",
        encoder_layers=None,
        upsr_config=[*recipe, str(folder / "unilm.yaml")] if architecture == "unilm" else None,
    )
    result = run_comparison(settings, tmp_path / "out", log=lambda _: None)
    zero, sasrec, pop, random = result["zero_shot"]
    pretrain = json.loads((tmp_path / "out" / "pretrain" / "config.json").read_text())
    assert pretrain["upsr_stage"] == "pretrain"
    assert not (tmp_path / "out" / "pretrain" / "test_ranks.jsonl").exists()  # not tested
    config = json.loads((tmp_path / "out" / "zero-shot" / "config.json").read_text())
    assert config["upsr_stage"] == "pretrain" and config["epochs"] == 0
    assert config["upsr_init_checkpoint"].startswith(str(tmp_path / "out" / "pretrain"))
    assert [config["upsr_item_text"], config["upsr_history_text"]] == zero["texts"]
    assert config["plm_architecture"] == ("unilm" if architecture == "unilm" else "encoder_decoder")
    assert zero["epochs"] == (3 if architecture == "unilm" else 1)  # the pre-training's
    assert sasrec["model"] == "SASRec (trained on the target)" and pop["model"].startswith("Pop")
    target = json.loads((tmp_path / "out" / "sasrec-target" / "config.json").read_text())
    assert target["dataset"] == zero["dataset"] == "drama-slice" and target["epochs"] == 2
    for row in (zero, sasrec, pop):  # each with its control and per-user ranks
        assert 0.0 <= row["ndcg@10"] <= 1.0 and "passes" in row["control"]
        assert len(row["per_user"]["rank"]) == 20
    assert (
        random["ndcg@10"] == random_ranking(result["zero_shot_data"]["target"]["items"])["ndcg@10"]
    )
    assert result["zero_shot_data"]["sources"] == ["action", "comedy"]


def test_random_ranking_is_the_expectation_of_a_uniform_rank():
    from recbole_ext.compare import random_ranking

    items = 7
    expected = random_ranking(items, ks=(3,))
    ranks = [[r] for r in range(1, items + 1)]  # every rank equally likely
    mean = {k: sum(rank_metrics(r, (3,))[k] for r in ranks) / items for k in expected}
    assert expected == pytest.approx(mean)


def test_the_shipped_cpu_configs_run_every_model(tmp_path):
    # configs/recbole/{baselines,upsr}_ml100k_cpu.yaml on a small slice (tiny UPSR backbone)
    upsr_compare = load_tool("upsr_compare")
    out = tmp_path / "out"
    argv = ["--models", "SASRec", "BERT4Rec", "UPSR", "--users", "12", "--last", "15"]
    argv += ["--baseline-epochs", "1", "--backbone", "tiny", "--no-zero-shot"]
    argv += ["--baseline-config", str(CONFIG_DIR / "recbole" / "baselines_ml100k_cpu.yaml")]
    argv += ["--upsr-config", str(CONFIG_DIR / "recbole" / "upsr_ml100k_cpu.yaml")]
    assert upsr_compare.main([*argv, "--out", str(out)]) == 0
    rows = {r["model"]: r for r in json.loads((out / "results.json").read_text())["supervised"]}
    for model in ("SASRec", "BERT4Rec"):
        config = json.loads((out / model / "config.json").read_text())
        assert config["train_prefixes_per_user"] == 10
        assert rows[model]["training_rows"] == 12 * 10  # 10 of each user's 12 prefixes
    upsr = json.loads((out / "UPSR" / "config.json").read_text())
    assert upsr["history_token_budget"] == 128 and upsr["enable_amp"]
    assert rows["UPSR"]["epochs"] == 3 and rows["UPSR"]["training_rows"] == 3 * 12 * 3
    assert rows["UPSR"]["texts"][1] in ("list_semicolon_8", "prompt_watched_8")


@pytest.mark.parametrize(
    "ablation",
    [
        "sum_scores.yaml",
        "title_texts.yaml",
        "history_20.yaml",
        "unilm.yaml",
        "unilm_rank.yaml",
        "unilm_all_prefixes.yaml",
        "every_test_user.yaml",
    ],
)
def test_the_shipped_ablation_configs_stack_over_the_cpu_config(tmp_path, ablation):
    # upsr_ml100k_cpu.yaml + upsr_ablations/curve.yaml + one ablation (unilm_rank.yaml stacks
    # over unilm.yaml, as unilm_all_prefixes.yaml does), tiny backbone, a slice
    upsr_compare = load_tool("upsr_compare")
    out = tmp_path / "out"
    folder = CONFIG_DIR / "recbole" / "upsr_ablations"
    files = [CONFIG_DIR / "recbole" / "upsr_ml100k_cpu.yaml", folder / "curve.yaml"]
    if ablation in ("unilm_rank.yaml", "unilm_all_prefixes.yaml"):
        files.append(folder / "unilm.yaml")
    argv = ["--models", "UPSR", "--users", "12", "--last", "15", "--backbone", "tiny"]
    argv += ["--no-zero-shot", "--upsr-config", *map(str, [*files, folder / ablation])]
    assert upsr_compare.main([*argv, "--out", str(out)]) == 0
    (row,) = json.loads((out / "results.json").read_text())["supervised"]
    config = json.loads((out / "UPSR" / "config.json").read_text())
    assert config["test_users"] == (None if ablation == "every_test_user.yaml" else 200)
    assert config["history_token_budget"] == (384 if ablation == "history_20.yaml" else 128)
    curve = json.loads((out / "UPSR" / "progress.json").read_text())
    epochs = {"unilm_all_prefixes.yaml": 1, "unilm.yaml": 3, "unilm_rank.yaml": 3}.get(ablation, 4)
    assert row["epochs"] == epochs and len(curve["valid_score"]) == epochs  # validated each
    if ablation.startswith("unilm"):
        assert config["plm_architecture"] == "unilm" and row["layers"] == "2 (one stack)"
        if ablation == "unilm_all_prefixes.yaml":  # RecBole's loader: one row per prefix
            assert config["train_prefixes_per_user"] is None is row["prefixes_per_user"]
            assert row["training_rows"] == 12 * (15 - 3)  # 15 interactions: 12 train targets
        else:
            assert config["train_prefixes_per_user"] == row["prefixes_per_user"] == 12
        assert config["upsr_rank_weight"] == (1.0 if ablation == "unilm_rank.yaml" else 0.0)
        assert {"hits@10", "control_hits@10", "passes"} <= set(row["control"])  # its control
    elif ablation == "sum_scores.yaml":
        assert config["upsr_score_normalisation"] == "sum"
    elif ablation == "history_20.yaml":
        assert row["texts"][1] == "list_semicolon_20"
    elif ablation == "every_test_user.yaml":  # validated on the seeded 100, tested on all 12
        assert config["valid_users"] == 100 and len(row["per_user"]["user"]) == 12
    else:
        assert row["texts"][0] == config["upsr_item_text"] == "title_year_disambiguated"
