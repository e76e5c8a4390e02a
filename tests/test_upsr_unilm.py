"""UPSR's single-stack architecture (``plm_architecture: unilm``): the cached scoring path
equals one plain Hugging Face forward with the sequence-to-sequence mask, training and
full sort run through RecBole, the recipe keys (two learning rates, warm-up, ranking term)
do what they say, and nothing on the path from the item text to the history starts random.
"""

from recbole_ext.model.upsr import UPSR
from recbole_ext.trainer import UPSRTrainer

import pytest
import torch
from recbole.utils import get_trainer, init_seed
from test_upsr_model import build, first_batch, write_movies

UNILM = {"plm_architecture": "unilm", "plm_tiny": {"num_hidden_layers": 2}}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("upsr_unilm_data")
    write_movies(root / "tinymovies")
    return root


@pytest.mark.parametrize("id_enhanced", [False, True])
def test_cached_full_sort_equals_the_plain_joint_forward(data_root, tmp_path, id_enhanced):
    _, model, _, _, test = build(
        data_root, tmp_path, upsr_score_batch_rows=7, upsr_id_enhanced=id_enhanced, **UNILM
    )
    model.eval()
    interaction = first_batch(test)
    with torch.no_grad():
        fast = model.full_sort_predict(interaction)
        plain = model.plain_full_sort_predict(interaction)
    assert torch.isinf(fast[:, 0]).all() and torch.isfinite(fast[:, 1:]).all()
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)
    # the history must matter: two users' rows differ
    assert not torch.allclose(fast[0, 1:], fast[1, 1:])


def test_training_rows_equal_the_plain_joint_forward_and_train(data_root, tmp_path):
    config, model, train, valid, _ = build(data_root, tmp_path, **UNILM)
    batch = first_batch(train)
    model.eval()
    hidden, mask = model.forward(batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN])
    with torch.no_grad():
        fast, valid_tokens = model._token_log_probs(hidden, mask, batch[model.POS_ITEM_ID])
        model.plain_scoring = True
        plain, _ = model._token_log_probs(hidden, mask, batch[model.POS_ITEM_ID])
        model.plain_scoring = False
    torch.testing.assert_close(fast[valid_tokens], plain[valid_tokens], atol=1e-5, rtol=1e-5)
    model.train()
    trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
    assert isinstance(trainer, UPSRTrainer)
    loss = trainer._train_epoch(train, 0, show_progress=False)
    assert torch.isfinite(torch.as_tensor(loss))
    result = trainer.evaluate(valid, load_best_model=False)
    assert 0 <= result["ndcg@5"] <= 1


def test_bf16_cached_scoring_stays_close_to_fp32(data_root, tmp_path):
    _, model, _, _, test = build(data_root, tmp_path, **UNILM)
    model.eval()
    interaction = first_batch(test)
    with torch.no_grad():
        exact = model.full_sort_predict(interaction)
        model.score_dtype = "bfloat16"
        low = model.full_sort_predict(interaction)
    # bf16 keeps 8 bits of mantissa: scores (mean token log-probabilities) within 0.05
    torch.testing.assert_close(low, exact, atol=5e-2, rtol=0)


def test_minilm_single_stack_starts_only_the_head_transform_random(data_root, tmp_path):
    _, model, *_ = build(
        data_root,
        tmp_path,
        plm_backbone="minilm",
        plm_encoder_layers=1,
        **{"plm_architecture": "unilm"},
    )
    assert type(model.plm).__name__ == "BertForMaskedLM"
    assert model.new_plm_parameters and all(
        name.startswith("cls.predictions.") for name in model.new_plm_parameters
    )
    # no attention parameter of the stack is new: the item text reads the history through
    # the pre-trained self-attention
    groups = model.parameter_groups(1e-3)
    assert len(groups) == 2


def test_two_learning_rates_and_warmup(data_root, tmp_path):
    config, model, train, *_ = build(
        data_root,
        tmp_path,
        plm_backbone="minilm",
        plm_encoder_layers=1,
        plm_architecture="unilm",
        upsr_pretrained_lr_scale=0.1,
        upsr_warmup_steps=4,
        learning_rate=1e-3,
    )
    trainer = UPSRTrainer(config, model)
    rates = sorted(group["initial_lr"] for group in trainer.optimizer.param_groups)
    assert rates == pytest.approx([1e-4, 1e-3])
    head = model.plm.cls.predictions.transform.dense.weight
    new_group = next(
        g for g in trainer.optimizer.param_groups if any(p is head for p in g["params"])
    )
    assert new_group["lr"] == pytest.approx(1e-3 / 4)  # the first of 4 warm-up steps
    for step in range(2, 6):
        trainer.optimizer.step()
        assert new_group["lr"] == pytest.approx(1e-3 * min(1.0, step / 4))


def test_ranking_term_adds_to_the_loss_and_refuses_bad_keys(data_root, tmp_path):
    _, plain_model, train, *_ = build(data_root, tmp_path, **UNILM)
    init_seed(2020, True)
    _, ranked_model, *_ = build(
        data_root, tmp_path, upsr_rank_weight=1.0, upsr_rank_negatives=3, **UNILM
    )
    ranked_model.load_state_dict(plain_model.state_dict())
    plain_model.eval()
    ranked_model.eval()
    batch = first_batch(train)
    with torch.no_grad():
        text = plain_model.calculate_loss(batch)
        both = ranked_model.calculate_loss(batch)
        hidden, mask = ranked_model.forward(
            batch[ranked_model.ITEM_SEQ], batch[ranked_model.ITEM_SEQ_LEN]
        )
        rank = ranked_model._rank_loss(hidden, mask, batch[ranked_model.POS_ITEM_ID])
    assert rank > 0
    torch.testing.assert_close(both, text + rank)
    with pytest.raises(ValueError, match="upsr_rank_negatives"):
        build(data_root, tmp_path, upsr_rank_negatives=0, **UNILM)
    with pytest.raises(ValueError, match="plm_architecture"):
        build(data_root, tmp_path, plm_architecture="decoder_only")
    with pytest.raises(ValueError, match="generative"):
        build(data_root, tmp_path, upsr_full_sort="generative", upsr_num_beams=8, **UNILM)


def test_an_encoder_decoder_checkpoint_does_not_load_into_the_single_stack(data_root, tmp_path):
    _, stack, *_ = build(data_root, tmp_path, **UNILM)
    assert isinstance(stack, UPSR)
    assert stack.signature["architecture"] == "BertForMaskedLM"
    _, pair, *_ = build(data_root, tmp_path)
    with pytest.raises(ValueError, match="another backbone"):
        stack._check_signature(pair.signature, "checkpoint")
