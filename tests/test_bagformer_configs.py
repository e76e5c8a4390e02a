"""Every shipped BagFormer config: loads through LAVIS's Config with every name registered
(fast); built and run on one batch of tiny generated data, bags and all (slow for the
ViT-B/16 + BERT-base configs)."""

import json

import retrieval_ext  # noqa: F401

import pytest
import torch
from conftest import REPO_ROOT

CONFIGS = sorted((REPO_ROOT / "configs" / "lavis" / "bagformer").glob("*.yaml"))
CHINESE = "红色连衣裙"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_bagformer_config_loads_through_lavis_config(path):
    from types import SimpleNamespace

    from retrieval_ext.launch import check_registry_names

    from lavis.common.config import Config

    check_registry_names(str(path))
    cfg = Config(SimpleNamespace(cfg_path=str(path), options=[]))
    model = cfg.model_cfg
    assert model.arch == "bagformer_retrieval" and model.model_type == "offline"
    assert model.interaction == "bagwise" and model.entity_dictionary and model.tokenizer
    assert model.bag_rule == "official" and model.i2t_masked_bags == "official"  # as released
    assert "://" not in str(model.pretrained) and "://" not in str(model.entity_dictionary)
    assert (model.ita_weight, model.itm_weight, model.twc_weight) == (1.0, 1.0, 1.0)
    assert (model.temp, model.temp_min, model.temp_max) == (0.07, 0.05, 0.5)
    run = cfg.run_cfg
    assert run.task == "image_text_retrieval" and run.runner == "runner_portable"
    assert list(run.score_sets)[:3] == ["merge", "recall", "rank"] and run.select_on == "merge"
    assert run.use_dist_eval_sampler is False and "seed" in run
    if not path.stem.startswith("embedded"):  # the official recipe
        assert (run.init_lr, run.weight_decay, run.max_epoch) == (1e-5, 0.02, 6)
        assert (run.batch_size_train, run.k_test, model.image_size) == (32, 256, 256)
        assert run.lr_sched == "linear_warmup_cosine_group_lr" and run.warmup_steps == 0


def _tiny_files(root, chinese: bool):
    from retrieval_ext.datasets.image_text_synthetic import write_image_text_dataset

    write_image_text_dataset(root, {"train": 2, "val": 2, "test": 2}, seed=5)
    if chinese:
        for split in ("train", "val", "test"):
            path = root / "annotations" / f"{split}.json"
            records = json.loads(path.read_text())
            for r in records:
                r["caption"] = CHINESE if isinstance(r["caption"], str) else [CHINESE] * 3
            path.write_text(json.dumps(records, ensure_ascii=False))
        # "连衣" too: the released rule reaches a 3-token entity through its prefix
        (root / "entities.txt").write_text("连衣裙\n连衣\n红色\n", encoding="utf-8")
    return root


def _slow_unless_embedded(path):
    marks = [] if path.stem.startswith("embedded") else [pytest.mark.slow]
    return pytest.param(path, marks=marks, id=path.name)


@pytest.mark.parametrize("path", [_slow_unless_embedded(p) for p in CONFIGS])
def test_every_bagformer_config_builds_and_runs_one_batch(path, tmp_path, monkeypatch):
    from retrieval_ext.launch import build

    from omegaconf import OmegaConf

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    name = next(iter(OmegaConf.load(path).datasets))
    chinese = name.startswith("muge")
    data = _tiny_files(tmp_path / "data", chinese=chinese)
    prefix = f"datasets.{name}"
    size = 48 if path.stem.startswith("embedded") else 64  # the real architecture, on small images
    options = [
        f"{prefix}.build_info.annotations.{split}.storage={data / 'annotations' / f'{split}.json'}"
        for split in ("train", "val", "test")
    ] + [
        f"{prefix}.build_info.images.storage={data / 'images'}",
        f"{prefix}.vis_processor.train.image_size={size}",
        f"{prefix}.vis_processor.eval.image_size={size}",
        f"model.image_size={size}",
        f"model.entity_dictionary={data / 'entities.txt'}",
        "model.pretrained=",
        "run.device=cpu",
        "run.num_workers=0",
        "run.batch_size_train=2",
        f"run.output_dir={tmp_path / 'runs'}",
    ]
    if chinese:  # a bert-base-chinese-style vocabulary folder
        vocab = tmp_path / "bert-base-chinese"
        vocab.mkdir()
        (vocab / "vocab.txt").write_text(
            "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *CHINESE]) + "\n"
        )
        options.append(f"model.tokenizer={vocab}")
    _, _, model, datasets, _ = build(str(path), options)
    train = datasets[name]["train"]
    batch = train.collater([train[0], train[3]])  # two images: ITM needs a negative
    output = model(batch)
    assert torch.isfinite(output.loss) and output.loss_itm > 0 and output.loss_twc > 0
    text = model.tokenize(batch["text_input"])
    entity_bags = model.bagger.entity_bags(text.input_ids.cpu(), text.attention_mask.cpu())
    assert (entity_bags > 0).all()  # the dictionary's phrases are found in every caption
    width = 64 if path.stem.startswith("embedded") else 768  # the CPU-sized model, or BERT-base
    assert model.text_encoder.config.hidden_size == width
    if chinese:
        text = model.tokenize([CHINESE])
        index = model.bagger.bag_index(text.input_ids.cpu(), text.attention_mask.cpu())[0]
        # [CLS] 红 色 连 衣 裙 [SEP]: "红色" and "连衣裙" one bag each, adjacent, so the
        # released offsets put an empty bag (number 2) between them
        assert index[:7].tolist() == [0, 1, 1, 3, 3, 3, 4]
