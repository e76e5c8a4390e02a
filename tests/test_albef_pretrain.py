"""ALBEF's pre-training (LAVIS's albef_pretrain) offline and the shared start it hands to the
fine-tuning configs: the host defects reproduced in a fresh interpreter and gone with the
fixes; the pre-training and fine-tuning configs built and run on one batch of tiny
generated data; a pre-trained checkpoint loaded into ALBEF retrieval and BagFormer with the
expected tensors matched, missing and unused."""

import retrieval_ext  # noqa: F401

import pytest
import torch
from conftest import REPO_ROOT, run_python

OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "PYTHONPATH": str(REPO_ROOT)}
PRETRAIN = REPO_ROOT / "configs" / "lavis" / "albef" / "embedded_pretrain.yaml"
ALBEF = REPO_ROOT / "configs" / "lavis" / "albef" / "embedded_finetune.yaml"
BAGFORMER = REPO_ROOT / "configs" / "lavis" / "bagformer" / "embedded_finetune.yaml"
CAPTIONS = ["a dark red fire truck", "a light bulb", "a paper cup", "a water tower"]


def test_lavis_albef_pretrain_cannot_build_a_small_model_offline():
    result = run_python(
        f"""
        import lavis
        from omegaconf import OmegaConf
        from lavis.models.albef_models.albef_pretrain import AlbefPretrain
        base = OmegaConf.load(AlbefPretrain.default_config_path('base')).model
        print(base.pretrained)
        AlbefPretrain.from_config(OmegaConf.load('{PRETRAIN}').model)
        """,
        env=OFFLINE,
    )
    assert result.stdout.startswith("https://")  # the only type's default names a URL
    assert result.returncode != 0
    assert "vit parameter must be base or large" in result.stderr


def test_albef_pretrain_trains_offline_with_the_fixes_and_not_before_np_inf():
    code = f"""
        import torch
        from omegaconf import OmegaConf
        {{imports}}
        from lavis.common.registry import registry
        cfg = OmegaConf.load('{PRETRAIN}').model
        model = registry.get_model_class('albef_pretrain').from_config(cfg)
        print(type(model).__module__, model.queue_size, model.text_encoder.config.fusion_layer)
        out = model({{{{'image': torch.randn(4, 3, 48, 48), 'text_input': {CAPTIONS},
                     'epoch': 0, 'iters': 0, 'num_iters_per_epoch': 10}}}})
        print('losses', *(bool(v > 0) for v in (out.loss_itc, out.loss_itm, out.loss_mlm)))
    """
    # the offline builds alone, without the np.Inf alias
    without_inf = (
        "import lavis; from plugins.compat import albef_offline_from_config, "
        "albef_pretrain_offline_from_config; albef_offline_from_config(); "
        "albef_pretrain_offline_from_config()"
    )
    before = run_python(code.format(imports=without_inf), env=OFFLINE)
    assert before.returncode != 0
    assert "`np.Inf` was removed in the NumPy 2.0 release" in before.stderr
    after = run_python(code.format(imports="import retrieval_ext"), env=OFFLINE)
    assert after.returncode == 0, after.stderr
    assert "lavis.models.albef_models.albef_pretrain 160 2" in after.stdout
    assert "losses True True True" in after.stdout


def test_albef_pretrain_runs_without_a_queue_with_the_fix():
    code = f"""
        import torch
        from omegaconf import OmegaConf
        {{imports}}
        from lavis.common.registry import registry
        cfg = OmegaConf.merge(OmegaConf.load('{PRETRAIN}').model, {{{{'queue_size': 0}}}})
        model = registry.get_model_class('albef_pretrain').from_config(cfg)
        out = model({{{{'image': torch.randn(4, 3, 48, 48), 'text_input': {CAPTIONS},
                     'epoch': 0, 'iters': 0, 'num_iters_per_epoch': 10}}}})
        print('keys', tuple(out.sims.sim_i2t.shape), tuple(model.image_queue.shape))
    """
    # the offline builds and the np.Inf alias, without the queue fix
    without_fix = (
        "import lavis; from plugins.compat import albef_offline_from_config, "
        "albef_pretrain_offline_from_config, lavis_numpy2_inf_alias; "
        "albef_offline_from_config(); albef_pretrain_offline_from_config(); "
        "lavis_numpy2_inf_alias()"
    )
    before = run_python(code.format(imports=without_fix), env=OFFLINE)
    assert before.returncode != 0 and "The expanded size of the tensor (0)" in before.stderr
    after = run_python(code.format(imports="import retrieval_ext"), env=OFFLINE)
    assert after.returncode == 0, after.stderr
    assert "keys (4, 4) (64, 0)" in after.stdout  # the batch's own keys, an empty queue


def test_albef_pretrain_refuses_a_pretrained_it_would_ignore():
    from lavis.common.registry import registry
    from omegaconf import OmegaConf

    cfg = OmegaConf.merge(OmegaConf.load(PRETRAIN).model, {"pretrained": "ALBEF.pth"})
    with pytest.raises(ValueError, match=r"model.pretrained = ALBEF.pth.*run.resume_ckpt_path"):
        registry.get_model_class("albef_pretrain").from_config(cfg)


def test_the_pretrain_builder_reads_the_train_split_alone(tmp_path):
    from retrieval_ext.datasets.image_text_synthetic import write_image_text_dataset
    from retrieval_ext.launch import build

    data = tmp_path / "data"
    write_image_text_dataset(data, {"train": 2, "val": 2, "test": 2}, seed=5)
    prefix = "datasets.embedded_image_text_pretrain.build_info"
    options = [
        f"{prefix}.annotations.train.storage={data / 'annotations' / 'train.json'}",
        f"{prefix}.images.storage={data / 'images'}",
        f"run.output_dir={tmp_path / 'runs'}",
    ]
    with pytest.raises(ValueError, match="must name the train split alone"):
        build(str(PRETRAIN), [*options, f"{prefix}.annotations.val.storage=val.json"])


def _data_options(data, builder):
    prefix = f"datasets.{builder}.build_info"
    splits = ("train",) if builder.endswith("_pretrain") else ("train", "val", "test")
    return [
        f"{prefix}.annotations.{split}.storage={data / 'annotations' / f'{split}.json'}"
        for split in splits
    ] + [f"{prefix}.images.storage={data / 'images'}"]


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """The pre-training config built on tiny data, one training step run, and its state
    saved as the runner saves a checkpoint."""
    from retrieval_ext.datasets.image_text_synthetic import write_image_text_dataset
    from retrieval_ext.launch import build

    root = tmp_path_factory.mktemp("pretrain")
    data = root / "data"
    write_image_text_dataset(data, {"train": 2, "val": 2, "test": 2}, seed=5)
    options = [
        *_data_options(data, "embedded_image_text_pretrain"),
        "run.num_workers=0",
        f"run.output_dir={root / 'runs'}",
    ]
    cfg, _, model, datasets, _ = build(str(PRETRAIN), options)
    assert cfg.run_cfg.task == "image_text_pretrain" and cfg.model_cfg.arch == "albef_pretrain"
    (train,) = datasets["embedded_image_text_pretrain"].values()
    assert list(datasets["embedded_image_text_pretrain"]) == ["train"]
    # 4 pairs of 2 images (the queue of 160 takes whole batches of a size dividing it)
    batch = train.collater([train[i] for i in (0, 1, 3, 4)])
    batch.update(epoch=0, iters=0, num_iters_per_epoch=1)
    output = model(batch)
    assert all(torch.isfinite(v) and v > 0 for v in (output.loss_itc, output.loss_itm))
    assert torch.isfinite(output.loss_mlm)
    output.loss.backward()
    assert int(model.queue_ptr) == 4  # the batch's momentum keys are queued
    checkpoint = root / "checkpoint_latest.pth"
    torch.save({"model": model.state_dict()}, checkpoint)
    return {"data": data, "checkpoint": checkpoint, "state": model.state_dict()}


def _fine_tuned(config, pretrained, tmp_path, *extra):
    from retrieval_ext.launch import build

    options = [
        *_data_options(pretrained["data"], "embedded_image_text"),
        f"model.pretrained={pretrained['checkpoint']}",
        "run.num_workers=0",
        f"run.output_dir={tmp_path / 'runs'}",
        *extra,
    ]
    _, _, model, datasets, _ = build(str(config), options)
    loaded = {k: v.clone() for k, v in model.state_dict().items()}  # before a step moves them
    train = datasets["embedded_image_text"]["train"]
    batch = train.collater([train[0], train[3]])  # two images: ITM needs a negative
    batch.update(epoch=0, iters=0, num_iters_per_epoch=1)
    output = model(batch)
    assert torch.isfinite(output.loss) and output.loss_itm > 0
    return model, loaded


def test_albef_fine_tuning_loads_the_pretrained_start(pretrained, tmp_path):
    model, loaded = _fine_tuned(ALBEF, pretrained, tmp_path)
    report = model.pretrained_load
    assert report["missing"] == ["idx_queue"]  # retrieval's own (image ids of the queue)
    # the MLM heads (of the online and momentum BERT) are pre-training's alone
    assert report["unused"] and all(".cls." in k for k in report["unused"])
    assert {"temp", "itm_head.weight", "text_proj.weight", "vision_proj.weight"} <= set(
        report["matched"]
    )
    state = pretrained["state"]
    bert = "text_encoder.bert.encoder.layer"  # pre-training's BertForMaskedLM
    for mine, theirs in [
        (
            "text_encoder.embeddings.word_embeddings.weight",
            "text_encoder.bert.embeddings.word_embeddings.weight",
        ),
        (
            "text_encoder.encoder.layer.3.crossattention.self.key.weight",
            f"{bert}.3.crossattention.self.key.weight",
        ),
        (
            "text_encoder_m.encoder.layer.0.attention.self.query.weight",
            "text_encoder_m.bert.encoder.layer.0.attention.self.query.weight",
        ),
        ("visual_encoder.blocks.1.mlp.fc1.weight", "visual_encoder.blocks.1.mlp.fc1.weight"),
        ("image_queue", "image_queue"),
    ]:
        assert torch.equal(loaded[mine], state[theirs]), mine


@pytest.mark.parametrize("interaction", ["bagwise", "tokenwise", "cls_token"])
def test_bagformer_fine_tuning_loads_every_tensor_it_shares(pretrained, tmp_path, interaction):
    model, loaded = _fine_tuned(
        BAGFORMER,
        pretrained,
        tmp_path,
        f"model.interaction={interaction}",
        f"model.entity_dictionary={pretrained['data'] / 'entities.txt'}",
    )
    report = model.pretrained_load
    assert report["missing"] == []  # the bagging layer has no weights
    assert set(report["matched"]) == set(model.state_dict())
    # the momentum encoders, queues and MLM heads are ALBEF's alone
    assert {k.split(".")[0] for k in report["unused"]} == {
        "visual_encoder_m",
        "text_encoder_m",
        "vision_proj_m",
        "text_proj_m",
        "image_queue",
        "text_queue",
        "queue_ptr",
        "text_encoder",
    }
    assert all(".cls." in k for k in report["unused"] if k.startswith("text_encoder."))
    state = pretrained["state"]
    layer = "encoder.layer.2.crossattention.self.value.weight"
    assert torch.equal(loaded[f"text_encoder.{layer}"], state[f"text_encoder.bert.{layer}"])
    assert torch.equal(loaded["itm_head.weight"], state["itm_head.weight"])
