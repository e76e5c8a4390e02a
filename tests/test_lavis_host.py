"""LAVIS itself, through the plugin layer: registries, the retrieval task, CLIP offline."""

from types import SimpleNamespace

import pytest
import torch
from omegaconf import OmegaConf


@pytest.fixture(scope="module")
def lavis_registry():
    import retrieval_ext  # noqa: F401

    from lavis.common.registry import registry

    return registry


def test_retrieval_task_resolves_and_sets_up_through_lavis(lavis_registry):
    from lavis.tasks import RetrievalTask, setup_task

    assert lavis_registry.get_task_class("retrieval") is RetrievalTask
    cfg = SimpleNamespace(run_cfg=OmegaConf.create({"task": "retrieval", "k_test": 16}))
    task = setup_task(cfg)
    assert isinstance(task, RetrievalTask) and task.cfg.k_test == 16


def test_import_lavis_alone_registers_no_runner_or_lr_scheduler():
    from conftest import run_python

    result = run_python("""
        import lavis
        from lavis.common.registry import registry
        print(registry.get_runner_class('runner_base'),
              registry.get_lr_scheduler_class('linear_warmup_cosine_lr'))
    """)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "None None"


def test_runners_and_lr_schedulers_are_registered_by_the_extension(lavis_registry):
    from lavis.runners import RunnerBase

    assert lavis_registry.get_runner_class("runner_base") is RunnerBase
    assert lavis_registry.get_lr_scheduler_class("linear_warmup_cosine_lr") is not None
    assert lavis_registry.get_model_class("no_such_model") is None  # LAVIS's silent miss


def test_lavis_clip_builds_offline_from_a_small_random_config(lavis_registry, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    clip_class = lavis_registry.get_model_class("clip")
    model = clip_class(
        embed_dim=32,
        vision_cfg=dict(layers=2, width=64, patch_size=8, image_size=32),
        text_cfg=dict(context_length=77, vocab_size=49408, width=32, heads=2, layers=2),
    ).eval()
    tokens = model.tokenizer(["a red square moves left", "a blue circle moves up"])
    assert tokens.shape == (2, 77)  # LAVIS's shipped BPE vocabulary, offline
    with torch.no_grad():
        text = model.encode_text(tokens)
        image = model.encode_image(torch.randn(3, 3, 32, 32))
    assert text.shape == (2, 32) and image.shape == (3, 32)
    assert torch.isfinite(text).all() and torch.isfinite(image).all()


def test_lavis_clip_from_config_builds_an_architecture_offline(lavis_registry, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = OmegaConf.create({"model_type": "ViT-B-32", "pretrained": ""})  # no download
    model = lavis_registry.get_model_class("clip").from_config(cfg)
    assert sum(p.numel() for p in model.parameters()) > 100_000_000
