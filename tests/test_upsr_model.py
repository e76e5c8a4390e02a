"""UPSR as a RecBole model: tiny random backbones on a small atomic dataset the tests write."""

import sys
import unittest.mock

from recbole_ext import UPSR
from recbole_ext.data import synthetic

import numpy as np
import pytest
import torch
import yaml
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.data.interaction import Interaction
from recbole.utils import get_trainer, init_seed

from plugins.paths import CONFIG_DIR

UPSR_TEXT = CONFIG_DIR / "recbole" / "upsr_text.yaml"
WORDS = synthetic.TITLE_WORDS[:14]
GENRES = synthetic.GENRES[:5]


def write_movies(folder, n_users=24, n_items=30, seed=0, first_item=1, words=WORDS):
    """An ML-100K-shaped dataset: titles, years and genres; one title repeated on purpose."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    items = ["item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq"]
    for i in range(1, n_items + 1):
        title = "The Twin" if i in (1, 2) else " ".join(rng.choice(words, 2)).title()
        genres = " ".join(sorted(set(rng.choice(GENRES, 2))))
        items.append(f"{first_item + i - 1}\t{title}\t{1980 + i}\t{genres}")
    (folder / f"{folder.name}.item").write_text("\n".join(items) + "\n")
    inters = ["user_id:token\titem_id:token\trating:float\ttimestamp:float"]
    for u in range(1, n_users + 1):
        # users walk through the items in order from a random start: a learnable pattern
        start = int(rng.integers(1, n_items))
        for step in range(10):
            item = (start + step - 1) % n_items + first_item
            inters.append(f"{u}\t{item}\t4\t{1000 * u + step}")
    (folder / f"{folder.name}.inter").write_text("\n".join(inters) + "\n")


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("upsr_data")
    write_movies(root / "tinymovies")
    # two more domains with their own items (ids 101.., 201..) and words, same users
    write_movies(root / "domain_a", seed=1, first_item=101, words=WORDS[:7])
    write_movies(root / "domain_b", seed=2, first_item=201, words=WORDS[7:])
    return root


def upsr_config(data_root, tmp_path, dataset="tinymovies", **overrides):
    settings = {
        "data_path": str(data_root),
        "load_col": {
            "inter": ["user_id", "item_id", "timestamp"],
            "item": ["item_id", "movie_title", "release_year", "class"],
        },
        "plm_backbone": "tiny",
        "text_consistency_embedder": "none",
        "text_domains": None,
        "MAX_ITEM_LIST_LENGTH": 5,
        "epochs": 1,
        "train_batch_size": 64,
        "eval_batch_size": 16,
        "learning_rate": 0.001,
        "topk": [5],
        "valid_metric": "NDCG@5",
        "metrics": ["Recall", "NDCG"],
        "show_progress": False,
        "checkpoint_dir": str(tmp_path / "saved"),
        "upsr_score_batch_rows": 256,
        **overrides,
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "upsr_test.yaml"
    path.write_text(yaml.safe_dump(settings))
    with unittest.mock.patch.object(sys, "argv", sys.argv[:1]):
        return Config(model="UPSR", dataset=dataset, config_file_list=[str(UPSR_TEXT), str(path)])


def build(data_root, tmp_path, dataset="tinymovies", **overrides):
    config = upsr_config(data_root, tmp_path, dataset, **overrides)
    init_seed(config["seed"], True)
    dataset = create_dataset(config)
    train, valid, test = data_preparation(config, dataset)
    model = UPSR(config, train._dataset)
    return config, model, train, valid, test


def first_batch(loader):
    batch = next(iter(loader))
    return batch[0] if isinstance(batch, tuple) else batch


def test_stage_policy_picks_the_texts_and_disambiguates(data_root, tmp_path):
    _, model, *_ = build(data_root, tmp_path)
    assert model.stage == "finetune"
    texts = model.item_texts
    assert len(texts) == model.n_items
    assert len(set(texts[1:])) == model.n_items - 1  # the two "The Twin" are told apart
    ids = model.item_token_ids
    assert (ids[:, 0] != model.pad_id).sum() == model.n_items - 1  # every real item has tokens


def test_full_sort_predict_equals_predict_per_item(data_root, tmp_path):
    _, model, _, _, test = build(data_root, tmp_path)
    model.eval()
    interaction = first_batch(test)
    with torch.no_grad():
        scores = model.full_sort_predict(interaction)
        assert scores.shape == (len(interaction), model.n_items)
        assert torch.isinf(scores[:, 0]).all()
        rows = interaction[model.ITEM_SEQ].shape[0]
        for item in (1, 7, model.n_items - 1):
            single = Interaction(
                {
                    model.ITEM_SEQ: interaction[model.ITEM_SEQ],
                    model.ITEM_SEQ_LEN: interaction[model.ITEM_SEQ_LEN],
                    model.ITEM_ID: torch.full((rows,), item),
                }
            )
            torch.testing.assert_close(model.predict(single), scores[:, item], atol=1e-5, rtol=1e-5)
    assert (scores[:, 1:] <= 0).all()  # mean log-probabilities


def test_constrained_beam_search_returns_real_items_best_first(data_root, tmp_path):
    _, model, _, _, test = build(data_root, tmp_path, upsr_num_beams=40)
    model.eval()
    interaction = first_batch(test)
    with torch.no_grad():
        top = model.recommend_topk(interaction, k=5)
        scores = model.full_sort_predict(interaction)
    assert top.shape == (len(interaction), 5)
    for row, score in zip(top.tolist(), scores, strict=True):
        assert len(set(row)) == 5 and all(1 <= i < model.n_items for i in row)
        # 40 beams >= 30 items: the search is exhaustive, so its best is the best text
        assert row[0] == int(score.argmax())


def test_sum_normalisation_scores_the_text_likelihood_in_sort_and_search(data_root, tmp_path):
    _, model, _, _, test = build(data_root, tmp_path, upsr_num_beams=40)
    _, summed, *_ = build(data_root, tmp_path, upsr_num_beams=40, upsr_score_normalisation="sum")
    summed.load_state_dict(model.state_dict())
    model.eval(), summed.eval()
    interaction = first_batch(test)
    with torch.no_grad():
        per_token = model.full_sort_predict(interaction)
        total = summed.full_sort_predict(interaction)
        top = summed.recommend_topk(interaction, k=3)
    lengths = model.item_token_len.to(per_token.dtype)  # EOS included
    torch.testing.assert_close(total[:, 1:], per_token[:, 1:] * lengths[1:], atol=1e-4, rtol=1e-5)
    assert not torch.equal(total.argmax(1), per_token.argmax(1))  # the rules rank differently
    # exhaustive beams (40 >= 30 items) with no length penalty find the likeliest text
    assert top[:, 0].tolist() == total.argmax(1).tolist()
    with pytest.raises(ValueError, match="upsr_score_normalisation"):
        build(data_root, tmp_path, upsr_score_normalisation="mean")


def test_generative_full_sort_through_recbole_trainer_equals_exhaustive_scoring(
    data_root, tmp_path
):
    # 40 beams >= 30 items: beam search is exhaustive, so RecBole's metrics of the
    # generated top-K must equal those of scoring every item, on the same weights
    config, model, train, valid, test = build(
        data_root, tmp_path / "gen", upsr_full_sort="generative", upsr_num_beams=40
    )
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.fit(train, valid, verbose=False)  # validates with generative full sort too
    generative = trainer.evaluate(test, load_best_model=False)

    score_config, scoring, *_ = build(data_root, tmp_path / "score", upsr_num_beams=40)
    scoring.load_state_dict(model.state_dict())
    exact = get_trainer(score_config["MODEL_TYPE"], score_config["model"])(
        score_config, scoring
    ).evaluate(test, load_best_model=False)
    assert set(generative) == {"recall@5", "ndcg@5"}
    assert exact["recall@5"] > 0  # a non-trivial comparison
    for metric, value in exact.items():
        assert generative[metric] == pytest.approx(value, abs=1e-4), metric

    model.eval()
    interaction = first_batch(test)
    with torch.no_grad():
        beam = model.full_sort_predict(interaction)
        full = scoring.full_sort_predict(interaction)
    finite = torch.isfinite(beam)
    assert (finite.sum(dim=1) == model.n_items - 1).all()  # every item, once
    torch.testing.assert_close(beam[finite], full[finite], atol=1e-4, rtol=0)


def test_generative_top_items_are_distinct_real_items_with_their_exact_scores(data_root, tmp_path):
    # 8 beams over 30 items: not exhaustive; each generated item carries its exact
    # full-sort score, in descending beam order
    _, model, _, _, test = build(data_root, tmp_path, upsr_full_sort="generative", upsr_num_beams=8)
    model.eval()
    interaction = first_batch(test)
    with torch.no_grad():
        beam = model.full_sort_predict(interaction)
        items, beam_scores = model._beam_items(interaction, 8)
        model.full_sort_mode = "score"
        full = model.full_sort_predict(interaction)
    assert beam.shape == full.shape == (len(interaction), model.n_items)
    for row, (found, scores) in enumerate(zip(items, beam_scores, strict=True)):
        assert 5 <= len(found) <= 8 and len(set(found)) == len(found)
        assert all(1 <= i < model.n_items for i in found)
        assert scores == sorted(scores, reverse=True)
        assert torch.isfinite(beam[row]).sum() == len(found)
        torch.testing.assert_close(beam[row, found], full[row, found], atol=1e-4, rtol=0)
        # the beam's best is the best item's text whenever the search kept that item
        if int(full[row].argmax()) in found:
            assert found[0] == int(full[row].argmax())


def test_generative_full_sort_warns_when_the_beams_fill_fewer_than_topk(
    data_root, tmp_path, caplog, monkeypatch
):
    _, model, _, _, test = build(data_root, tmp_path, upsr_full_sort="generative", upsr_num_beams=8)
    interaction = first_batch(test)
    rows = len(interaction)
    # as if the beams had finished only 3 distinct items for the first history
    short = (
        [[1, 2, 3]] + [[1, 2, 3, 4, 5]] * (rows - 1),
        [[-1.0, -2.0, -3.0]] + [[-1.0] * 5] * (rows - 1),
    )
    monkeypatch.setattr(model, "_beam_items", lambda *_: short)
    with caplog.at_level("WARNING"):
        scores = model.full_sort_predict(interaction)
    assert torch.isfinite(scores[0]).sum() == 3
    assert f"1 of {rows} histories got fewer than 5 distinct items from 8 beams" in caplog.text


def test_generative_full_sort_refuses_a_topk_deeper_than_the_beams(data_root, tmp_path):
    with pytest.raises(ValueError, match=r"upsr_num_beams \(4\).*topk asks for 5"):
        build(data_root, tmp_path, upsr_full_sort="generative", upsr_num_beams=4)
    with pytest.raises(ValueError, match="upsr_full_sort: 'beam' is not one of"):
        build(data_root, tmp_path, upsr_full_sort="beam")


def test_trains_saves_and_reloads_with_recbole(data_root, tmp_path):
    from recbole.quick_start import load_data_and_model

    config, model, train, valid, test = build(data_root, tmp_path)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    before = [p.detach().clone() for p in model.plm.parameters()]
    trainer.fit(train, valid, verbose=False)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.plm.parameters(), strict=True))
    result = trainer.evaluate(test, load_best_model=True)
    assert set(result) == {"recall@5", "ndcg@5"}
    assert all(0.0 <= v <= 1.0 for v in result.values())

    _, reloaded, _, _, _, reloaded_test = load_data_and_model(trainer.saved_model_file)
    assert isinstance(reloaded, UPSR)
    reloaded.eval()
    model.eval()
    interaction = first_batch(reloaded_test)
    with torch.no_grad():
        torch.testing.assert_close(
            reloaded.full_sort_predict(interaction), model.full_sort_predict(interaction)
        )


@pytest.mark.slow
def test_run_recbole_finds_upsr_by_name(data_root, tmp_path):
    from recbole.quick_start import run_recbole

    config = upsr_config(data_root, tmp_path)
    path = tmp_path / "upsr_test.yaml"
    with unittest.mock.patch.object(sys, "argv", sys.argv[:1]):
        result = run_recbole(
            model="UPSR",
            dataset="tinymovies",
            config_file_list=[str(UPSR_TEXT), str(path)],
            config_dict={"checkpoint_dir": config["checkpoint_dir"]},
        )
    assert set(result["test_result"]) == {"recall@5", "ndcg@5"}


def test_init_checkpoint_transfers_the_plm_and_refuses_another_backbone(data_root, tmp_path):
    config, model, train, valid, test = build(data_root, tmp_path)
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.fit(train, valid, verbose=False)
    saved = trainer.saved_model_file

    _, started, *_ = build(data_root, tmp_path / "b", upsr_init_checkpoint=saved)
    for a, b in zip(
        started.plm.state_dict().values(), model.plm.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="another backbone or vocabulary.*hidden_size 32"):
        build(
            data_root,
            tmp_path / "c",
            upsr_init_checkpoint=saved,
            plm_tiny={"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2},
        )


def test_histories_longer_than_the_budget_are_cut_oldest_first(data_root, tmp_path):
    _, model, *_ = build(
        data_root, tmp_path, history_token_budget=48, upsr_history_text="prompt_watched"
    )
    history = list(range(1, 21))
    kept = model.history.kept_items(history)
    assert 0 < len(kept) < 20 and kept == history[-len(kept) :]
    text, _ = model.history.build(history)
    assert len(model.tokenizer(text)["input_ids"]) <= 48


def test_id_enhanced_fine_tuning_learns_item_vectors(data_root, tmp_path):
    _, model, train, *_ = build(data_root, tmp_path, upsr_id_enhanced=True)
    loss = model.calculate_loss(first_batch(train))
    loss.backward()
    assert torch.isfinite(loss)
    assert model.item_id_embedding.weight.grad.abs().sum() > 0


def test_local_t5_checkpoint_is_a_backbone(data_root, tmp_path):
    from recbole_ext.model.plm import _minilm_path

    from transformers import AutoTokenizer, T5Config, T5ForConditionalGeneration

    folder = tmp_path / "tiny-t5"
    tokenizer = AutoTokenizer.from_pretrained(_minilm_path())
    t5 = T5ForConditionalGeneration(
        T5Config(
            vocab_size=len(tokenizer),
            d_model=32,
            d_ff=64,
            d_kv=8,
            num_layers=1,
            num_heads=2,
            decoder_start_token_id=tokenizer.pad_token_id,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.sep_token_id,
        )
    )
    t5.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    _, model, train, _, test = build(data_root, tmp_path, plm_backbone=str(folder))
    assert model.signature["architecture"] == "T5ForConditionalGeneration"
    assert torch.isfinite(model.calculate_loss(first_batch(train)))
    model.eval()
    interaction = first_batch(test)
    assert model.t5_decoder
    projected = []  # batch sizes the cross-attention key projection runs on
    model.plm.decoder.block[0].layer[1].EncDecAttention.k.register_forward_hook(
        lambda module, args, out: projected.append(args[0].shape[0])
    )
    with torch.no_grad():
        fast = model.full_sort_predict(interaction)  # cross-attention cache shared by view
        assert set(projected) == {1}  # once per history, not once per (history, item) row
        plain = model.plain_full_sort_predict(interaction)
    assert torch.isfinite(fast[:, 1:]).all()
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)


def test_dataset_whose_items_lack_text_is_refused(tmp_path):
    folder = tmp_path / "notext"
    folder.mkdir()
    (folder / "notext.inter").write_text(
        "user_id:token\titem_id:token\ttimestamp:float\n"
        + "".join(f"{u}\t{i}\t{u * 10 + i}\n" for u in range(1, 6) for i in range(1, 6))
    )
    with pytest.raises(ValueError, match="dataset 'notext' has no item features"):
        build(
            tmp_path,
            tmp_path,
            load_col={"inter": ["user_id", "item_id", "timestamp"]},
            dataset="notext",
        )


@pytest.mark.parametrize(
    "output_vocab, attention", [("full", "sdpa"), ("items", "sdpa"), ("items", "eager")]
)
def test_fast_full_sort_equals_the_plain_forward(data_root, tmp_path, output_vocab, attention):
    # fast path: items sorted by token length in chunks of 7, history read once per chunk
    _, model, _, _, test = build(
        data_root, tmp_path, upsr_output_vocab=output_vocab, upsr_score_batch_rows=7
    )
    model.eval()
    # "eager": the fast path builds the explicit causal + padding self-attention mask
    # instead of relying on SDPA's causal mode (the layers accept either)
    model.plm.decoder.bert.config._attn_implementation = attention
    interaction = first_batch(test)
    assert model.bert_decoder
    lengths = model.item_token_len[model.items_by_length]
    assert (lengths[1:] >= lengths[:-1]).all()  # chunks hold items of similar length
    with torch.no_grad():
        fast = model.full_sort_predict(interaction)
        plain = model.plain_full_sort_predict(interaction)
    assert torch.isinf(fast[:, 0]).all()
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
    if output_vocab == "items":
        assert len(model.output_vocab) < 200  # the test titles use a few dozen tokens


def test_full_sort_reads_each_history_once_with_items_folded_into_the_query(data_root, tmp_path):
    _, model, _, _, test = build(data_root, tmp_path, upsr_score_batch_rows=7)
    model.eval()
    interaction = first_batch(test)
    keys, queries = [], []  # (rows, tokens) the cross-attention projections run on
    cross = model.plm.decoder.bert.encoder.layer[0].crossattention.self
    cross.key.register_forward_hook(lambda module, args, out: keys.append(args[0].shape[:2]))
    cross.query.register_forward_hook(lambda module, args, out: queries.append(args[0].shape))
    with torch.no_grad():
        model.full_sort_predict(interaction)
    chunks = -(-(model.n_items - 1) // 7) * len(interaction)
    assert len(keys) == len(queries) == chunks
    assert {rows for rows, _ in keys} == {1}  # one history's keys, not one per item row
    # every item's text queries each history once, its chunk's rows in one call
    assert sum(rows for rows, _, _ in queries) == (model.n_items - 1) * len(interaction)


def test_bf16_full_sort_stays_close_to_fp32(data_root, tmp_path):
    """bf16 autocast with the log-softmax in fp32. Stated tolerance: scores (mean token
    log-probabilities) within 0.05 nats, and the same top-5 items in nearly every row."""
    _, model, _, _, test = build(data_root, tmp_path, upsr_score_dtype="bfloat16")
    model.eval()
    interaction = first_batch(test)
    with torch.no_grad():
        fast = model.full_sort_predict(interaction)
        model.score_dtype = "float32"
        exact = model.full_sort_predict(interaction)
    assert fast.dtype == torch.float32
    torch.testing.assert_close(fast[:, 1:], exact[:, 1:], atol=0.05, rtol=0)
    top_fast, top_exact = fast.topk(5).indices, exact.topk(5).indices
    overlap = [
        len(set(a.tolist()) & set(b.tolist())) / 5 for a, b in zip(top_fast, top_exact, strict=True)
    ]
    assert np.mean(overlap) >= 0.9


def test_amp_training_keeps_the_log_softmax_in_fp32(data_root, tmp_path):
    _, model, train, *_ = build(data_root, tmp_path)
    interaction = first_batch(train)
    with torch.no_grad():
        exact = model.calculate_loss(interaction)
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16):  # RecBole's enable_amp
            mixed = model.calculate_loss(interaction)
    assert mixed.dtype == torch.float32
    torch.testing.assert_close(mixed, exact, atol=0.02, rtol=0)


def test_scoring_benchmark_tool_runs_both_models(tmp_path):
    import json
    import subprocess
    import sys

    from plugins.paths import REPO_ROOT

    out = tmp_path / "bench.json"
    result = subprocess.run(
        [
            sys.executable,
            str(REPO_ROOT / "tools" / "analysis_tools" / "upsr_scoring_benchmark.py"),
            "--backbone",
            "tiny",
        ]
        + ["--items", "60", "120", "--users", "2", "--repeats", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert [r["items"] for r in rows] == [60, 120]
    for row in rows:
        assert row["SASRec users/s"] > 0 and row["plain users/s"] > 0
        assert row["fast fp32 users/s"] > 0 and row["fast bf16 users/s"] > 0
        assert row["max |fast fp32 - plain|"] < 1e-4  # the fast path is exact
        assert " / " in row["texts"]  # the fine-tuning stage's item / history constructions


def test_multi_domain_pretraining_then_zero_shot_on_unseen_items(data_root, tmp_path):
    from recbole_ext.data.mix import mix_datasets

    summary = mix_datasets([data_root / "tinymovies", data_root / "domain_a"], tmp_path, "mixed")
    assert summary["total"] == {"interactions": 480, "items": 60}
    mixed_root = tmp_path
    (mixed_root / "domain_b").symlink_to(data_root / "domain_b")

    # pre-train on the mixed source domains
    config, model, train, valid, _ = build(
        mixed_root, tmp_path / "pre", "mixed", upsr_stage="pretrain"
    )
    assert model.n_items == 61
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    trainer.fit(train, valid, verbose=False)

    # zero-shot: the target domain's items appear in no pre-training data
    config, target, _, _, test = build(
        mixed_root, tmp_path / "zero", "domain_b", upsr_init_checkpoint=trainer.saved_model_file
    )
    source_items = {t.split(":", 1)[1] for t in train._dataset.field2id_token["item_id"][1:]}
    target_items = set(test._dataset.field2id_token["item_id"][1:])
    assert not source_items & target_items
    for a, b in zip(target.plm.state_dict().values(), model.plm.state_dict().values(), strict=True):
        torch.testing.assert_close(a, b)
    evaluator = get_trainer(config["MODEL_TYPE"], config["model"])(config, target)
    result = evaluator.evaluate(test, load_best_model=False)
    assert set(result) == {"recall@5", "ndcg@5"} and all(0 <= v <= 1 for v in result.values())


def test_mixing_refuses_different_headers(data_root, tmp_path):
    from recbole_ext.data.mix import mix_datasets

    other = tmp_path / "other"
    other.mkdir()
    (other / "other.inter").write_text("user_id:token\titem_id:token\n1\t1\n")
    (other / "other.item").write_text("item_id:token\ttitle:token_seq\n1\tA\n")
    with pytest.raises(ValueError, match="other.inter: header .* differs"):
        mix_datasets([data_root / "tinymovies", other], tmp_path, "bad")


@pytest.mark.slow
def test_two_process_gloo_training_with_recbole_trainer(data_root, tmp_path):
    """torchrun + RecBole's own run_recbole on 2 CPU processes (gloo)."""
    import json
    import os
    import subprocess

    from plugins.paths import REPO_ROOT

    upsr_config(data_root, tmp_path, epochs=2)  # writes tmp_path/upsr_test.yaml
    out = tmp_path / "ddp.json"
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
    ]
    command += [str(REPO_ROOT / "tools" / "recbole_ddp.py"), "--model", "UPSR"]
    command += ["--dataset", "tinymovies", "--config-file", str(UPSR_TEXT)]
    command += ["--config-file", str(tmp_path / "upsr_test.yaml"), "--out", str(out)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=900, cwd=tmp_path, env=env
    )
    # the ranks' own tracebacks come first; torchrun's summary and the warnings after them
    failure = (
        result.stderr[result.stderr.find("Traceback") :] if "Traceback" in result.stderr else ""
    )
    assert result.returncode == 0, failure[:6000] + result.stderr[-3000:]
    payload = json.loads(out.read_text())
    assert payload["world_size"] == 2
    assert set(payload["test_result"]) == {"recall@5", "ndcg@5"}
    assert list((tmp_path / "saved").glob("UPSR-*.pth"))
