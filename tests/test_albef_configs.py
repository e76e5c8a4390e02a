"""Every shipped ALBEF config: loads through LAVIS's Config with every name registered
(fast); built and run on one batch of tiny generated data (slow: ALBEF's real sizes)."""

import json

import retrieval_ext  # noqa: F401

import pytest
import torch
from conftest import REPO_ROOT

# the retrieval configs (embedded_pretrain.yaml, LAVIS's albef_pretrain on the training pairs
# alone, is exercised by tests/test_albef_pretrain.py)
CONFIGS = sorted(
    p
    for p in (REPO_ROOT / "configs" / "lavis" / "albef").glob("*.yaml")
    if "pretrain" not in p.stem
)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_albef_config_loads_through_lavis_config(path):
    from types import SimpleNamespace

    from retrieval_ext.launch import check_registry_names

    from lavis.common.config import Config

    check_registry_names(str(path))
    cfg = Config(SimpleNamespace(cfg_path=str(path), options=[]))
    assert cfg.model_cfg.arch == "albef_retrieval" and cfg.model_cfg.model_type == "offline"
    assert "://" not in str(cfg.model_cfg.pretrained) and "://" not in str(cfg.model_cfg.finetuned)
    assert cfg.model_cfg.tokenizer  # a local vocabulary, never the hub's bert-base-uncased
    assert cfg.run_cfg.task == "image_text_retrieval" and cfg.run_cfg.runner == "runner_portable"
    assert cfg.run_cfg.use_dist_eval_sampler is False and "seed" in cfg.run_cfg
    assert cfg.model_cfg.queue_size % cfg.run_cfg.batch_size_train == 0
    (name,) = cfg.datasets_cfg
    info = cfg.datasets_cfg[name].build_info
    assert {"train", "val", "test"} <= set(info.annotations) and info.images.storage
    assert all("url" not in split for split in info.annotations.values())


def _tiny_files(root, chinese: bool):
    """Annotation files in LAVIS's format and PNGs, through the embedded generator; the
    MUGE config gets Chinese captions."""
    from retrieval_ext.datasets.image_text_synthetic import write_image_text_dataset

    write_image_text_dataset(root, {"train": 2, "val": 2, "test": 2}, seed=5)
    if chinese:
        for split in ("train", "val", "test"):
            path = root / "annotations" / f"{split}.json"
            records = json.loads(path.read_text())
            for r in records:
                r["caption"] = "红色连衣裙" if isinstance(r["caption"], str) else ["红色连衣裙"] * 3
            path.write_text(json.dumps(records, ensure_ascii=False))
    return root


@pytest.mark.slow
@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_albef_config_builds_and_runs_one_batch(path, tmp_path, monkeypatch):
    from retrieval_ext.launch import build

    from omegaconf import OmegaConf

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.chdir(tmp_path)
    name = next(iter(OmegaConf.load(path).datasets))
    data = _tiny_files(tmp_path / "data", chinese=name.startswith("muge"))
    prefix = f"datasets.{name}"
    options = [
        f"{prefix}.build_info.annotations.{split}.storage={data / 'annotations' / f'{split}.json'}"
        for split in ("train", "val", "test")
    ] + [
        f"{prefix}.build_info.images.storage={data / 'images'}",
        f"{prefix}.vis_processor.train.image_size=64",
        f"{prefix}.vis_processor.eval.image_size=64",
        "model.image_size=64",  # the real architecture, on small images
        "model.pretrained=",
        "run.device=cpu",
        "run.num_workers=0",
        f"run.output_dir={tmp_path / 'runs'}",
    ]
    if name.startswith("muge"):  # a bert-base-chinese-style vocabulary folder
        vocab = tmp_path / "bert-base-chinese"
        vocab.mkdir()
        (vocab / "vocab.txt").write_text(
            "\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"红色连衣裙"]) + "\n"
        )
        options.append(f"model.tokenizer={vocab}")
    _, _, model, datasets, _ = build(str(path), options)
    train = datasets[name]["train"]
    # two images (ALBEF samples each pair's ITM negative among the batch's other images)
    batch = train.collater([train[0], train[3]])
    batch.update(epoch=0, iters=0, num_iters_per_epoch=1)
    output = model(batch)
    assert torch.isfinite(output.loss) and output.loss_itm > 0
    width = 64 if name == "embedded_image_text" else 768  # the CPU-sized model, or ALBEF's
    assert model.visual_encoder.vision_width == model.text_encoder.config.hidden_size == width
    if name.startswith("muge"):
        ids = model.tokenizer(["红色连衣裙"]).input_ids[0]
        assert model.tokenizer.convert_ids_to_tokens(ids) == ["[CLS]", *"红色连衣裙", "[SEP]"]
