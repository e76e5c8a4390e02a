"""TeachCLIP against the official code (ruc-aimc-lab/TeachCLIP ``train.py``): the loss
weights follow the coarse loss, a student without teachers is trained by InfoNCE at weight
1, CLIP's embedding layers are frozen as by ``freeze_layer_num 0``, and a teacher built from
a fine-tuned checkpoint needs no OpenAI CLIP file."""

from pathlib import Path

import retrieval_ext  # noqa: F401
from retrieval_ext.models.clip4clip import freeze_clip_layers
from retrieval_ext.models.teachclip import coarse_teaching_loss

import pytest
import torch
from lavis.common.registry import registry
from omegaconf import OmegaConf
from retrieval_helpers import tiny_model_cfg

from plugins.paths import CONFIG_DIR

TEXTS = ["a red square moves left", "a blue bar moves up", "a white circle moves down"]
# what the official freeze_layer_num 0 leaves frozen: every CLIP tensor outside the blocks
# except the final norms, the projections and the logit scale
EMBEDDING_LAYERS = {
    "token_embedding.weight",
    "positional_embedding",
    "visual.conv1.weight",
    "visual.class_embedding",
    "visual.positional_embedding",
    "visual.ln_pre.weight",
    "visual.ln_pre.bias",
}


def _batch(batch=3, frames=4, seed=1):
    torch.manual_seed(seed)
    mask = torch.ones(batch, frames, dtype=torch.long)
    mask[1, 2:] = 0
    return {
        "video": torch.randn(batch, frames, 3, 32, 32),
        "video_mask": mask,
        "text_input": TEXTS[:batch],
    }


def _build(arch="teachclip_retrieval", model_type="seqTransf", seed=0, **overrides):
    torch.manual_seed(seed)
    return registry.get_model_class(arch).from_config(
        tiny_model_cfg(model_type, arch=arch, **overrides)
    )


def _teacher_spec(tmp_path: Path, **extra) -> dict:
    """A trained X-CLIP-style teacher as a user has it: its LAVIS config and checkpoint."""
    cfg = tiny_model_cfg("seqTransf", arch="xclip_retrieval", **extra)
    teacher = _build("xclip_retrieval", seed=3, **extra)
    cfg_path, checkpoint = tmp_path / "xclip.yaml", tmp_path / "xclip.pth"
    OmegaConf.save(OmegaConf.create({"model": cfg}), cfg_path)
    torch.save({"model": teacher.state_dict(), "epoch": 0}, checkpoint)
    return {"cfg_path": str(cfg_path), "checkpoint": str(checkpoint)}


# ---------------------------------------------------------------- loss weights
@pytest.mark.parametrize(
    "coarse_loss,weights",
    [
        ("ce", {"contrastive": 1.0, "coarse": 10.0, "fine": 1.0}),
        ("pear", {"contrastive": 0.2, "coarse": 1.0, "fine": 2.0}),
        ("l1", {"contrastive": 0.2, "coarse": 1.0, "fine": 2.0}),
    ],
)
def test_the_default_loss_weights_follow_the_coarse_loss(tmp_path, coarse_loss, weights):
    """train.py: ``gt + 10 * distill + fine`` with ``ce``, else ``0.2 gt + distill + 2 fine``."""
    student = _build(teachers={"xclip": _teacher_spec(tmp_path)}, coarse_loss=coarse_loss)
    assert student.loss_weights == weights
    out = student(_batch())
    expected = (
        weights["contrastive"] * out.loss_contrastive
        + weights["coarse"] * out.loss_coarse
        + weights["fine"] * out.loss_fine
    )
    assert torch.allclose(out.loss, expected)


def test_explicit_loss_weights_win_term_by_term(tmp_path):
    spec = _teacher_spec(tmp_path)
    student = _build(teachers={"xclip": spec}, coarse_loss="ce", loss_weights={"coarse": 3.0})
    assert student.loss_weights == {"contrastive": 1.0, "coarse": 3.0, "fine": 1.0}
    alone = _build(loss_weights={"contrastive": 0.2})
    assert alone.loss_weights["contrastive"] == 0.2


def test_without_teachers_the_student_trains_on_infonce_at_weight_one():
    student = _build()
    assert student.loss_weights == {"contrastive": 1.0, "coarse": 0.0, "fine": 0.0}
    out = student(_batch())
    assert torch.equal(out.loss, out.loss_contrastive)
    no_afa, clip4clip = _build(afa=False), _build("clip4clip_retrieval")
    clip4clip.load_state_dict(no_afa.state_dict())
    assert torch.allclose(no_afa(_batch()).loss, clip4clip(_batch()).loss, atol=1e-6)


def test_no_shipped_student_config_pins_the_loss_weights():
    """So ``coarse_loss: ce`` gets the official 1 / 10 / 1, and the ablation's student
    without teachers InfoNCE at weight 1, without overriding a weight."""
    cls = registry.get_model_class("teachclip_retrieval")
    paths = [cls.default_config_path(t) for t in cls.PRETRAINED_MODEL_CONFIG_DICT]
    paths += sorted((CONFIG_DIR / "lavis" / "teachclip").glob("teachclip_*.yaml"))
    for path in paths:
        assert "loss_weights" not in OmegaConf.load(path).model, path


# ---------------------------------------------------------------- freeze_layer_num
def _frozen(model) -> set[str]:
    return {n for n, p in model.clip.named_parameters() if not p.requires_grad}


@pytest.mark.parametrize("arch", ["clip4clip_retrieval", "teachclip_retrieval", "xclip_retrieval"])
def test_the_default_freezes_clips_embedding_layers_as_the_official_code(arch):
    model = _build(arch)
    assert model.freeze_layer_num == 0
    assert _frozen(model) == EMBEDDING_LAYERS
    in_groups = {id(p) for g in model.get_optimizer_params(0.2) for p in g["params"]}
    frozen_params = [p for p in model.clip.parameters() if not p.requires_grad]
    assert frozen_params and not any(id(p) in in_groups for p in frozen_params)
    before = model.clip.token_embedding.weight.clone()
    optimizer = torch.optim.AdamW(
        [g | {"lr": 1e-2} for g in model.get_optimizer_params(0.2)], lr=1e-2
    )
    model.train()
    model(_batch()).loss.backward()
    optimizer.step()
    assert torch.equal(model.clip.token_embedding.weight, before)
    assert model.clip.ln_final.weight.requires_grad and model.clip.logit_scale.requires_grad


def test_freeze_layer_num_counts_blocks_of_both_towers():
    everything = _build("clip4clip_retrieval", freeze_layer_num=-1)
    assert _frozen(everything) == set()
    one = _build("clip4clip_retrieval", freeze_layer_num=1)
    blocks = {n for n in _frozen(one) if "resblocks." in n}
    assert blocks and all(".resblocks.0." in f".{n}" for n in blocks)
    assert any(n.startswith("visual.transformer") for n in blocks)
    assert any(n.startswith("transformer.") for n in blocks)
    assert _frozen(one) - blocks == EMBEDDING_LAYERS
    with pytest.raises(ValueError, match=r"model.freeze_layer_num must be in \[-1, 2\]"):
        _build("clip4clip_retrieval", freeze_layer_num=3)


def test_xpool_trains_all_of_clip_by_default():
    assert _frozen(_build("xpool_retrieval", "xpool")) == set()


def test_freeze_clip_layers_names_what_it_froze():
    clip = _build("clip4clip_retrieval", freeze_layer_num=-1).clip
    assert set(freeze_clip_layers(clip, 0)) == EMBEDDING_LAYERS


def test_the_default_configs_state_freeze_layer_num():
    for arch, expected in (
        ("clip4clip_retrieval", 0),
        ("teachclip_retrieval", 0),
        ("xclip_retrieval", 0),
        ("xpool_retrieval", -1),
    ):
        cls = registry.get_model_class(arch)
        for model_type in cls.PRETRAINED_MODEL_CONFIG_DICT:
            cfg = OmegaConf.load(cls.default_config_path(model_type)).model
            assert cfg.freeze_layer_num == expected, (arch, model_type)


def test_configs_trained_from_scratch_train_the_embeddings():
    """A random CLIP's embeddings must learn: every shipped config without pre-trained
    weights trains them (freeze_layer_num -1, explicitly or as X-Pool's default)."""
    for folder in ("clip4clip", "teachclip"):
        for path in sorted((CONFIG_DIR / "lavis" / folder).glob("*.yaml")):
            model = OmegaConf.load(path).model
            if model.get("pretrained", None) != "":
                continue
            cls = registry.get_model_class(model.arch)
            freeze = model.get("freeze_layer_num", cls.FREEZE_LAYER_NUM)
            assert freeze == -1, path


def test_the_coarse_ce_is_the_official_one_times_the_batch():
    """The official ``ce`` averages over the B x B entries, ours over the B rows: the
    README's ``10 / B`` to match the official weight rests on this factor."""
    torch.manual_seed(0)
    student, teacher = torch.randn(6, 6), torch.randn(6, 6)
    official = sum(
        (-(t.softmax(-1)) * s.log_softmax(-1)).mean()
        for s, t in ((student, teacher), (student.t(), teacher.t()))
    )
    ours = coarse_teaching_loss(student, teacher, "ce")
    assert ours.item() == pytest.approx(6 * official.item(), rel=1e-6)


# ---------------------------------------------------------------- padding
@pytest.mark.parametrize("model_type", ["meanP", "seqTransf"])
def test_a_padded_clip_scores_as_its_unpadded_self_within_float_rounding(model_type):
    """Not bit for bit: the temporal transformer's sums run over more frames. The README
    states the bound measured here (largest difference over the seeds: 6.0e-8 for
    seqTransf, 0 for meanP, on unit vectors)."""
    worst = 0.0
    for seed in range(10):
        model = _build(model_type=model_type, seed=seed).eval()
        torch.manual_seed(100 + seed)
        video = torch.randn(3, 3, 3, 32, 32)
        padded = torch.cat([video, 5 * torch.randn(3, 2, 3, 32, 32)], dim=1)
        with torch.no_grad():
            a = model.extract_video_features(video, torch.ones(3, 3, dtype=torch.long))
            b = model.extract_video_features(padded, torch.tensor([[1, 1, 1, 0, 0]] * 3))
        worst = max(worst, (a - b).abs().max().item())
    print(f"{model_type}: largest difference {worst:.2g}")
    assert worst <= 1e-7, worst


# ---------------------------------------------------------------- the activation of a saved CLIP
@pytest.mark.parametrize("quick_gelu", [False, True])
def test_a_saved_clip_reloads_with_the_activation_its_config_names(tmp_path, quick_gelu):
    # an OpenAI-format state dict does not record the MLP activation: a CLIP trained from a
    # clip_config with GELU must come back as GELU (the fine-grained ablation's frame-caption
    # CLIP, and the teachers rebuilt inside a student, depend on it); one head per 64 widths,
    # as LAVIS infers the heads from a state dict
    clip_config = {
        "embed_dim": 64,
        "quick_gelu": quick_gelu,
        "vision_cfg": {"layers": 1, "width": 64, "patch_size": 8, "image_size": 32},
        "text_cfg": {
            "context_length": 77,
            "vocab_size": 49408,
            "width": 64,
            "heads": 1,
            "layers": 1,
        },
    }
    trained = _build("clip4clip_retrieval", "meanP", seed=5, clip_config=clip_config).eval()
    torch.save(trained.clip.state_dict(), tmp_path / "clip.pt")
    reloaded = _build(
        "clip4clip_retrieval", "meanP", seed=6, clip_config=clip_config,
        pretrained=str(tmp_path / "clip.pt"),
    ).eval()  # fmt: skip
    images = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    tokens = torch.randint(1, 49000, (2, 77), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        assert torch.allclose(
            reloaded.clip.encode_image(images), trained.clip.encode_image(images), atol=1e-6
        )
        assert torch.allclose(
            reloaded.clip.encode_text(tokens), trained.clip.encode_text(tokens), atol=1e-6
        )
