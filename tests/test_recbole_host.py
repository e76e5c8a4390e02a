"""RecBole itself, through the plugin layer: its trainer, its quick start, its checkpoints."""

import contextlib
import math

import pytest
import torch
from test_compat_recbole import TINY

pytestmark = pytest.mark.slow


@pytest.fixture
def in_tmp(tmp_path):
    # RecBole writes log/ and log_tensorboard/ into the working directory
    with contextlib.chdir(tmp_path):
        yield tmp_path


def test_sasrec_trains_evaluates_with_best_model_reload_and_resumes(in_tmp):
    import recbole_ext  # noqa: F401

    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    from recbole.utils import init_seed

    config = Config(
        model="SASRec",
        dataset="ml-100k",
        config_dict={**TINY, "checkpoint_dir": str(in_tmp / "saved")},
    )
    init_seed(config["seed"], config["reproducibility"])
    dataset = create_dataset(config)
    train_data, valid_data, test_data = data_preparation(config, dataset)
    trainer = Trainer(config, SASRec(config, train_data._dataset))
    best_valid, _ = trainer.fit(train_data, valid_data, verbose=False)
    result = trainer.evaluate(test_data, load_best_model=True)
    assert set(result) == {"recall@10", "ndcg@10"}
    assert 0 < result["ndcg@10"] <= result["recall@10"] <= 1
    assert math.isfinite(best_valid)

    # resume in a fresh trainer from the checkpoint the first one wrote, train one more epoch
    config["epochs"] = 2
    resumed = Trainer(config, SASRec(config, train_data._dataset))
    resumed.resume_checkpoint(trainer.saved_model_file)
    assert resumed.start_epoch == 1
    resumed.fit(train_data, valid_data, verbose=False)
    assert sorted(resumed.train_loss_dict) == [1]


def test_run_recbole_and_load_data_and_model_find_a_registered_model(in_tmp):
    import recbole_ext  # noqa: F401  (first: RecBole's quick start imports ray)

    from recbole.quick_start import load_data_and_model, run_recbole
    from recbole_models import PlugzooTinySASRec

    result = run_recbole(
        model="PlugzooTinySASRec",
        dataset="ml-100k",
        config_dict={**TINY, "checkpoint_dir": str(in_tmp / "saved")},
    )
    assert 0 < result["test_result"]["recall@10"] <= 1
    (checkpoint,) = (in_tmp / "saved").glob("PlugzooTinySASRec-*.pth")

    config, model, dataset, _, _, test_data = load_data_and_model(str(checkpoint))
    assert type(model) is PlugzooTinySASRec
    saved = torch.load(checkpoint, weights_only=False)["state_dict"]  # file written above
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(tensor.cpu(), saved[name].cpu())
