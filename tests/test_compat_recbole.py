"""Defects 3 and 7 (stack.md): RecBole checkpoints under torch>=2.6; model-name lookup."""

import pytest
from conftest import run_python

TINY = dict(
    epochs=1,
    MAX_ITEM_LIST_LENGTH=10,
    hidden_size=8,
    inner_size=16,
    n_layers=1,
    n_heads=1,
    train_batch_size=2048,
    eval_batch_size=4096,
    loss_type="CE",
    train_neg_sample_args=None,
    eval_args=dict(split={"LS": "valid_and_test"}, order="TO", mode="full"),
    metrics=["Recall", "NDCG"],
    topk=[10],
    valid_metric="NDCG@10",
    show_progress=False,
    seed=2020,
)

SAVE_THEN_RESUME = """
    import numpy as np
    for a, t in dict(float_=np.float64, complex_=np.complex128, unicode_=np.str_,
                     bool8=np.bool_).items():
        setattr(np, a, t)
    {fix}
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.sequential_recommender import SASRec
    from recbole.trainer import Trainer
    config = Config(model='SASRec', dataset='ml-100k', config_dict={config!r})
    dataset = create_dataset(config)
    train_data, _, _ = data_preparation(config, dataset)
    trainer = Trainer(config, SASRec(config, train_data._dataset))
    trainer._save_checkpoint(0)
    trainer.resume_checkpoint(trainer.saved_model_file)
    print('resumed at epoch', trainer.start_epoch)
"""


def _save_then_resume(tmp_path, fix: str):
    config = {**TINY, "checkpoint_dir": str(tmp_path / "saved")}
    return run_python(SAVE_THEN_RESUME.format(fix=fix, config=config), cwd=tmp_path)


@pytest.mark.slow
def test_recbole_cannot_resume_its_own_checkpoint_without_the_fix(tmp_path):
    result = _save_then_resume(tmp_path, fix="")
    assert result.returncode != 0
    assert "Weights only load failed" in result.stderr


@pytest.mark.slow
def test_recbole_resumes_its_own_checkpoint_with_the_fix(tmp_path):
    result = _save_then_resume(tmp_path, fix="import recbole_ext")
    assert result.returncode == 0, result.stderr
    assert "resumed at epoch 1" in result.stdout


def test_unknown_names_fail_with_lightgbm_noise_without_the_fix():
    result = run_python("""
        import numpy as np
        for a, t in dict(float_=np.float64, complex_=np.complex128, unicode_=np.str_,
                         bool8=np.bool_).items():
            setattr(np, a, t)
        from recbole.utils import get_model
        get_model('PlugzooTinySASRec')
    """)
    assert result.returncode != 0
    assert "lightgbm" in result.stderr


def test_registered_models_resolve_everywhere_recbole_looks_them_up():
    import recbole_ext  # noqa: F401

    import recbole.config.configurator as configurator
    import recbole.quick_start.quick_start as quick_start
    import recbole.utils
    from recbole_models import PlugzooTinySASRec

    for module in (recbole.utils, configurator, quick_start):
        assert module.get_model("PlugzooTinySASRec") is PlugzooTinySASRec
    assert recbole.utils.get_model("SASRec").__name__ == "SASRec"  # built-ins untouched


def test_unknown_model_name_is_a_clear_error():
    import recbole_models  # noqa: F401
    from recbole.utils import get_model

    with pytest.raises(ValueError, match=r"\[NoSuchModel\].*PlugzooTinySASRec"):
        get_model("NoSuchModel")


def test_registration_refuses_builtin_names_and_non_models():
    import recbole_ext  # noqa: F401

    from recbole.model.sequential_recommender.sasrec import SASRec

    from plugins.compat import register_recbole_model

    clash = type("SASRec", (SASRec,), {})
    with pytest.raises(ValueError, match="built-in model named 'SASRec'"):
        register_recbole_model(clash)
    with pytest.raises(TypeError, match="AbstractRecommender"):
        register_recbole_model(dict)


def test_lookup_fix_is_idempotent():
    import recbole_ext  # noqa: F401

    from plugins.compat import allow_recbole_checkpoints, extend_recbole_model_lookup

    assert extend_recbole_model_lookup() is False
    assert allow_recbole_checkpoints() is False


def test_registered_models_get_their_default_yaml_from_config():
    import recbole_models  # noqa: F401
    from recbole.config import Config

    config = Config(
        model="PlugzooTinySASRec",
        dataset="ml-100k",
        config_dict={"train_neg_sample_args": None, "hidden_size": 8},
    )
    assert config["hidden_dropout_prob"] == 0.5  # from SASRec.yaml
    assert config["hidden_size"] == 8  # the user's dict still wins
    assert config["USER_ID_FIELD"] == "user_id"


def test_default_config_must_exist(tmp_path):
    import recbole_ext  # noqa: F401

    from recbole.model.sequential_recommender.sasrec import SASRec

    from plugins.compat import register_recbole_model

    with pytest.raises(ValueError, match="nothere.yaml does not exist"):
        register_recbole_model(
            type("PlugzooOther", (SASRec,), {}), default_config=tmp_path / "nothere.yaml"
        )


DISTRIBUTED_CONFIG = """
    import numpy as np
    for a, t in dict(float_=np.float64, complex_=np.complex128, unicode_=np.str_,
                     bool8=np.bool_).items():
        setattr(np, a, t)
    {fix}
    import torch
    from recbole.config import Config
    config = Config(model='SASRec', dataset='ml-100k', config_dict=dict(
        local_rank=0, world_size=1, nproc=1, offset=0, ip='127.0.0.1', port='{port}',
        loss_type='CE', train_neg_sample_args=None))
    print('device', config['device'], 'single_spec', config['single_spec'],
          'backend', torch.distributed.get_backend())
"""


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the CPU path only")
def test_recbole_distributed_config_needs_cuda_without_the_fix(tmp_path):
    result = run_python(DISTRIBUTED_CONFIG.format(fix="", port=29617), cwd=tmp_path)
    assert result.returncode != 0
    assert "ProcessGroupNCCL is only supported with GPUs" in result.stderr


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="the CPU path only")
def test_recbole_distributed_config_runs_on_gloo_with_the_fix(tmp_path):
    fix = "from plugins.compat import recbole_cpu_distributed; recbole_cpu_distributed()"
    result = run_python(DISTRIBUTED_CONFIG.format(fix=fix, port=29618), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "device cpu single_spec False backend gloo" in result.stdout


ENSURE_DIR_RACE = """
    import numpy as np
    for a, t in dict(float_=np.float64, complex_=np.complex128, unicode_=np.str_,
                     bool8=np.bool_).items():
        setattr(np, a, t)
    {fix}
    import os
    import unittest.mock
    from recbole.data.dataset import dataset
    from recbole.trainer import trainer
    from recbole.utils import logger
    os.makedirs('saved')
    # another rank creates the folder between this rank's exists() check and its makedirs
    with unittest.mock.patch('os.path.exists', return_value=False):
        for module in (trainer, logger, dataset):
            module.ensure_dir('saved')
    print('folders ok')
"""


def test_concurrent_ensure_dir_fails_without_the_fix(tmp_path):
    result = run_python(ENSURE_DIR_RACE.format(fix=""), cwd=tmp_path)
    assert result.returncode != 0
    assert "FileExistsError" in result.stderr


def test_concurrent_ensure_dir_is_harmless_with_the_fix(tmp_path):
    fix = "from plugins.compat import recbole_race_free_ensure_dir as f; assert f()"
    result = run_python(ENSURE_DIR_RACE.format(fix=fix), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "folders ok" in result.stdout


def test_importing_recbole_models_leaves_anomaly_detection_as_it_was():
    defect = run_python(
        """
        import torch
        import recbole.model.sequential_recommender  # imports sine.py with the others
        print(torch.is_anomaly_enabled())
        """
    )
    assert defect.stdout.split() == ["True"], defect.stderr[-2000:]
    fixed = run_python(
        """
        import torch
        import recbole_ext  # applies the RecBole fixes
        from recbole.utils import get_model
        get_model("SASRec")
        from plugins.compat import recbole_leaves_anomaly_detection_off as fix
        print(torch.is_anomaly_enabled(), fix())
        """
    )
    assert fixed.stdout.split() == ["False", "False"], fixed.stderr[-2000:]


POP_COUNTS = """
    {fix}
    import torch
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.model.general_recommender import Pop
    config = Config(model='Pop', dataset='ml-100k', config_dict={{'show_progress': False}})
    dataset = create_dataset(config)
    train_data, _, _ = data_preparation(config, dataset)  # RecBole's default: 1 negative each
    model = Pop(config, train_data._dataset)
    for batch in train_data:
        model.calculate_loss(batch)
    items = train_data._dataset.inter_feat[config['ITEM_ID_FIELD']]
    truth = torch.bincount(items, minlength=model.n_items)
    counted = model.item_cnt.squeeze(1)
    print(len(train_data), int(truth.max()), int(counted.max()), bool(torch.equal(counted, truth)))
"""


def test_recbole_pop_counts_batches_and_negatives_unless_fixed():
    stock = run_python(
        POP_COUNTS.format(
            fix="import plugins.compat.numpy2 as n; n.restore_numpy_aliases()\n"
            "    from plugins.compat.checkpoints import allow_recbole_checkpoints as a; a()"
        )
    )
    assert stock.returncode == 0, stock.stderr[-2000:]
    batches, most, counted, equal = stock.stdout.split()
    # the defect: an item counts once per batch (and once per sampled negative batch)
    assert int(counted) <= 2 * int(batches) < int(most) and equal == "False"
    fixed = run_python(POP_COUNTS.format(fix="import recbole_ext  # applies the RecBole fixes"))
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    _, most, counted, equal = fixed.stdout.split()
    assert counted == most and equal == "True"  # every interaction once, negatives not at all
