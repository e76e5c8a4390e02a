"""The TeachCLIP student (teachclip_retrieval): AFA pooling with masks, the teaching losses
against their formulas, frozen teachers built from their own configs and checkpoints, the
three learning rates, official checkpoints, and the errors a user meets."""

import math

import retrieval_ext  # noqa: F401
from retrieval_ext.index import export_embeddings
from retrieval_ext.models.common import checkpoint_state
from retrieval_ext.models.teachclip import (
    coarse_teaching_loss,
    fine_teaching_loss,
    pearson_distance,
    registered_teachers,
)
from retrieval_ext.runners.lr_schedule import GroupScaledWarmupCosineLR

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from lavis.common.registry import registry
from omegaconf import OmegaConf
from retrieval_helpers import tiny_model_cfg

TEXTS = ["a red square moves left", "a blue bar moves up", "a white circle moves down"]


def _batch(batch=3, frames=4, masks=None, seed=1):
    torch.manual_seed(seed)
    mask = torch.ones(batch, frames, dtype=torch.long) if masks is None else torch.tensor(masks)
    return {
        "video": torch.randn(batch, frames, 3, 32, 32),
        "video_mask": mask,
        "text_input": TEXTS[:batch],
    }


def _student(model_type="seqTransf", seed=0, **overrides):
    torch.manual_seed(seed)
    cfg = tiny_model_cfg(model_type, arch="teachclip_retrieval", **overrides)
    return registry.get_model_class("teachclip_retrieval").from_config(cfg)


def _teacher_files(tmp_path, arch="xclip_retrieval", model_type="seqTransf", seed=3, **extra):
    """A teacher's LAVIS config and a checkpoint of it, as a user would have them."""
    cfg = tiny_model_cfg(model_type, arch=arch, **extra)
    torch.manual_seed(seed)
    teacher = registry.get_model_class(arch).from_config(cfg)
    name = arch.split("_")[0]
    cfg_path, checkpoint = tmp_path / f"{name}.yaml", tmp_path / f"{name}.pth"
    OmegaConf.save(OmegaConf.create({"model": cfg}), cfg_path)
    torch.save({"model": teacher.state_dict(), "epoch": 0}, checkpoint)
    return {"cfg_path": str(cfg_path), "checkpoint": str(checkpoint)}, teacher


def _taught_student(tmp_path, teachers=("xclip",), **overrides):
    specs = {}
    if "xclip" in teachers:
        specs["xclip"] = _teacher_files(tmp_path)[0]
    if "xpool" in teachers:
        specs["xpool"] = _teacher_files(tmp_path, "xpool_retrieval", "xpool", dropout=0.0)[0]
    return _student(teachers=specs, **overrides)


# ---------------------------------------------------------------- the student
@pytest.mark.parametrize("model_type", ["meanP", "seqTransf"])
def test_afa_pools_normalised_frames_by_a_softmax_of_frame_logits(model_type):
    model = _student(model_type).eval()
    samples = _batch()
    with torch.no_grad():
        frames = model.encode_frames(samples["video"])
        features = model.temporal_frame_features(frames, samples["video_mask"])
        logits = model.afa.logit(torch.relu(model.afa.hidden(features))).squeeze(-1)
        weights = torch.softmax(logits / 0.1, dim=1)
        expected = F.normalize((weights[..., None] * F.normalize(features, dim=-1)).sum(1), dim=-1)
        video = model.extract_video_features(samples["video"], samples["video_mask"])
    assert video.shape == (3, 64)
    assert torch.allclose(video, expected, atol=1e-6)


def test_afa_starts_near_mean_pooling():
    """The official init: at the start AFA's weights are nearly uniform over real frames."""
    model = _student().eval()
    samples = _batch(masks=[[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]])
    with torch.no_grad():
        weights = model(samples).frame_weights  # at fine_temperature 1
        features = model.temporal_frame_features(
            model.encode_frames(samples["video"]), samples["video_mask"]
        )
        afa = torch.softmax(model.afa(features) / 0.1, dim=1) * samples["video_mask"]
    uniform = samples["video_mask"] / samples["video_mask"].sum(1, keepdim=True)
    assert torch.allclose(weights, uniform, atol=0.02)
    afa = afa / afa.sum(1, keepdim=True)
    assert torch.allclose(afa, uniform, atol=0.15)


@pytest.mark.parametrize("model_type", ["meanP", "seqTransf"])
def test_a_padded_clip_scores_as_its_unpadded_self(model_type):
    model = _student(model_type).eval()
    short = _batch(frames=3)
    padded_video = torch.cat([short["video"], 5 * torch.randn(3, 2, 3, 32, 32)], dim=1)
    padded_mask = torch.tensor([[1, 1, 1, 0, 0]] * 3)
    with torch.no_grad():
        a = model.extract_video_features(short["video"], short["video_mask"])
        b = model.extract_video_features(padded_video, padded_mask)
        out_a = model(short)
        out_b = model({**short, "video": padded_video, "video_mask": padded_mask})
    assert torch.allclose(a, b, atol=1e-6)
    assert torch.allclose(out_a.logits, out_b.logits, atol=1e-5)
    assert torch.all(out_b.frame_weights[:, 3:] == 0)
    assert torch.allclose(out_a.frame_weights, out_b.frame_weights[:, :3], atol=1e-6)


def test_without_afa_the_student_is_clip4clip():
    student = _student(afa=False)
    torch.manual_seed(0)
    clip4clip = registry.get_model_class("clip4clip_retrieval").from_config(
        tiny_model_cfg("seqTransf")
    )
    clip4clip.load_state_dict(student.state_dict())
    samples = _batch(masks=[[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]])
    assert torch.allclose(student(samples).loss, clip4clip(samples).loss, atol=1e-6)


def test_the_index_stores_what_clip4clip_stores(tmp_path):
    """One D-float vector per video, searched by the same FAISS path (no AFA at retrieval)."""
    model = _student().eval()
    clip4clip = registry.get_model_class("clip4clip_retrieval").from_config(
        tiny_model_cfg("seqTransf")
    )
    torch.manual_seed(4)
    videos, masks = torch.randn(4, 4, 3, 32, 32), torch.ones(4, 4, dtype=torch.long)
    masks[1, 2:] = 0

    class Dataset(list):
        text = [f"caption {i}" for i in range(8)]
        txt2video = {i: i // 2 for i in range(8)}
        video2txt = {v: [2 * v, 2 * v + 1] for v in range(4)}
        entries = [{"video_id": f"v{v}"} for v in range(4)]

    class Loader(list):
        dataset = Dataset([None] * 4)

    loader = Loader(
        [
            {
                "video": videos[i : i + 2],
                "video_mask": masks[i : i + 2],
                "index": torch.arange(i, i + 2),
            }
            for i in (0, 2)
        ]
    )
    sizes = {}
    for name, m in (("student", model), ("clip4clip", clip4clip.eval())):
        folder = export_embeddings(m, loader, tmp_path / name, {"model": name})
        stored = np.load(folder / "videos.npy")
        sizes[name] = stored.nbytes / stored.shape[0]
        if name == "student":
            expected = model.extract_video_features(videos, masks).detach().numpy()
            assert np.allclose(stored, expected, atol=1e-6)
    assert sizes["student"] == sizes["clip4clip"] == 64 * 4


# ---------------------------------------------------------------- the losses
def test_pearson_distance_is_one_minus_numpy_corrcoef_over_the_mask():
    torch.manual_seed(0)
    p, q = torch.rand(4, 6), torch.rand(4, 6)
    mask = torch.ones(4, 6, dtype=torch.long)
    mask[2, 4:] = 0
    got = pearson_distance(p, q, mask)
    for row in range(4):
        n = int(mask[row].sum())
        expected = 1 - np.corrcoef(p[row, :n].numpy(), q[row, :n].numpy())[0, 1]
        assert got[row].item() == pytest.approx(expected, abs=1e-5)


def test_coarse_losses_follow_their_formulas():
    torch.manual_seed(0)
    s, t = 5 * torch.randn(4, 4), 5 * torch.randn(4, 4)

    def pear(a, b):
        rows = [
            1 - np.corrcoef(a[i].softmax(0).numpy(), b[i].softmax(0).numpy())[0, 1]
            for i in range(a.shape[0])
        ]
        return float(np.mean(rows))

    assert coarse_teaching_loss(s, t, "pear").item() == pytest.approx(
        pear(s, t) + pear(s.t(), t.t()), abs=1e-5
    )
    ce = -(t.softmax(1) * s.log_softmax(1)).sum(1).mean()
    ce = ce - (t.t().softmax(1) * s.t().log_softmax(1)).sum(1).mean()
    assert coarse_teaching_loss(s, t, "ce").item() == pytest.approx(ce.item(), rel=1e-6)
    assert coarse_teaching_loss(s, t, "l1").item() == pytest.approx(
        F.smooth_l1_loss(s, t).item(), rel=1e-6
    )
    assert coarse_teaching_loss(t, t, "pear").item() == pytest.approx(0.0, abs=1e-6)


def test_fine_ce_is_the_official_mean_over_frames_and_ignores_padding():
    torch.manual_seed(0)
    logits, relevance = torch.randn(3, 4), torch.rand(3, 4).softmax(1)
    full = torch.ones(3, 4, dtype=torch.long)
    official = (-torch.log(logits.softmax(1)) * relevance).mean()  # TeachCLIP's train.py
    assert fine_teaching_loss(logits, relevance, full, "ce", 1.0).item() == pytest.approx(
        official.item(), rel=1e-6
    )
    # padding: the padded frames' logits do not matter, the real ones are renormalised
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], [1, 1, 1, 0]])
    relevance = relevance * mask
    relevance = relevance / relevance.sum(1, keepdim=True)
    moved = logits.clone()
    moved[mask == 0] = 50.0
    for method in ("ce", "pear", "l1"):
        a = fine_teaching_loss(logits, relevance, mask, method, 1.0)
        b = fine_teaching_loss(moved, relevance, mask, method, 1.0)
        assert torch.isfinite(a) and a.item() == pytest.approx(b.item(), abs=1e-6), method
    row = -(relevance[1, :2] * logits[1, :2].log_softmax(0)).sum()
    single = fine_teaching_loss(logits[1:2], relevance[1:2], mask[1:2], "ce", 1.0)
    assert single.item() == pytest.approx(row.item() / 2, rel=1e-6)


def test_the_total_loss_weighs_each_term(tmp_path):
    student = _taught_student(tmp_path, loss_weights={"contrastive": 0.5, "coarse": 3.0})
    out = student(_batch(masks=[[1, 1, 1, 1], [1, 1, 0, 0], [1, 0, 0, 0]]))
    expected = 0.5 * out.loss_contrastive + 3.0 * out.loss_coarse + 2.0 * out.loss_fine
    assert torch.allclose(out.loss, expected)
    assert out.loss_coarse > 0 and out.loss_fine > 0


# ---------------------------------------------------------------- teachers
def test_teachers_are_built_from_their_files_and_stay_frozen(tmp_path):
    spec, reference = _teacher_files(tmp_path)
    student = _student(teachers={"xclip": spec})
    teacher = student.teachers["xclip"]
    for key, value in reference.state_dict().items():
        assert torch.equal(teacher.state_dict()[key], value), key
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    optimizer = torch.optim.AdamW(
        [g | {"lr": 1e-2} for g in student.get_optimizer_params(0.05)], lr=1e-2
    )
    in_groups = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert not any(id(p) in in_groups for p in teacher.parameters())
    student.train()
    assert not teacher.training and student.afa.training
    for _ in range(2):
        student(_batch()).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    assert all(p.grad is None for p in teacher.parameters())
    for key, value in teacher.state_dict().items():
        assert torch.equal(value, before[key]), key
    saved = checkpoint_state(student)
    assert saved and not any(k.startswith("teachers.") for k in saved)


@pytest.mark.parametrize("term", ["coarse", "fine"])
def test_teaching_pulls_the_student_towards_its_teacher(tmp_path, term):
    """A few steps of one teaching loss alone lower it: the student's logits move towards
    the teacher's (coarse), its AFA weights towards the teacher's frame relevance (fine)."""
    weights = {"contrastive": 0.0, "coarse": 0.0, "fine": 0.0, term: 1.0}
    # a peaked relevance: AFA starts near uniform weights, which a near-uniform one would
    # already match (the fine loss is then at its floor, the relevance's entropy)
    spec, _ = _teacher_files(tmp_path, relevance_temperature=0.01)
    student = _student(teachers={"xclip": spec}, loss_weights=weights)
    optimizer = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=1e-2)
    samples = _batch(masks=[[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0]])
    first = getattr(student(samples), f"loss_{term}").item()
    for _ in range(30):
        student(samples).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    last = getattr(student(samples), f"loss_{term}").item()
    assert last < (0.5 if term == "coarse" else 0.9) * first, (first, last)


def test_two_teachers_average_their_losses(tmp_path):
    both = _taught_student(tmp_path, teachers=("xclip", "xpool"))
    samples = _batch()
    out = both(samples)
    coarse, fine = [], []
    for teacher in both.teachers.values():
        taught = teacher.teach(samples)
        coarse.append(coarse_teaching_loss(out.logits, taught.logits, "pear"))
        afa_logits = out.frame_weights.log()  # softmax at temperature 1 of the AFA logits
        fine.append(
            fine_teaching_loss(afa_logits, taught.frame_relevance, samples["video_mask"], "ce", 1.0)
        )
    assert out.loss_coarse.item() == pytest.approx(sum(coarse).item() / 2, rel=1e-5)
    assert out.loss_fine.item() == pytest.approx(sum(fine).item() / 2, rel=1e-5)


def test_a_student_checkpoint_loads_without_its_teachers(tmp_path):
    student = _taught_student(tmp_path)
    path = tmp_path / "student.pth"
    torch.save({"model": checkpoint_state(student)}, path)
    alone = _student(seed=9, load_finetuned=True, finetuned=str(path))
    for key, value in checkpoint_state(student).items():
        assert torch.equal(alone.state_dict()[key], value), key


# ---------------------------------------------------------------- learning rates
def test_clip_new_layers_and_afa_each_get_their_rate_after_warm_up():
    student = _student(lr_scale_clip=1e-3, lr_scale_afa=10.0)
    groups = student.get_optimizer_params(weight_decay=0.2)
    names = {g["name"]: g for g in groups}
    assert set(names) >= {"new/decay", "clip/decay", "afa/decay", "afa/no_decay"}
    afa_params = {id(p) for p in student.afa.parameters()}
    for group in groups:
        is_afa = group["name"].startswith("afa/")
        assert all((id(p) in afa_params) == is_afa for p in group["params"])
    optimizer = torch.optim.AdamW([dict(g, lr=1e-4 * g["lr_scale"]) for g in groups])
    schedule = GroupScaledWarmupCosineLR(
        optimizer, max_epoch=10, min_lr=0.0, init_lr=1e-4, warmup_steps=5, warmup_start_lr=0.0,
        iters_per_epoch=10,
    )  # fmt: skip
    schedule.step(cur_epoch=0, cur_step=5)  # the end of warm-up: the peak rates
    rates = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert rates["new/decay"] == pytest.approx(1e-4)
    assert rates["clip/decay"] == pytest.approx(1e-7)
    assert rates["afa/decay"] == pytest.approx(1e-3)
    schedule.step(cur_epoch=5, cur_step=0)
    later = {g["name"]: g["lr"] for g in optimizer.param_groups}
    assert later["afa/decay"] == pytest.approx(10 * later["new/decay"])
    assert later["clip/decay"] == pytest.approx(1e-3 * later["new/decay"])


# ---------------------------------------------------------------- official checkpoints
def test_official_teachclip_checkpoints_convert(tmp_path):
    source = _student()
    with torch.no_grad():
        for param in source.parameters():
            param.add_(torch.randn_like(param))
    official = {}
    for key, value in source.state_dict().items():
        key = key.replace("afa.hidden.", "frameLinear.").replace("afa.logit.", "frameLinear2.")
        if key.startswith("temporal.transformer."):
            key = "transformerClip." + key.removeprefix("temporal.transformer.")
        elif key == "temporal.frame_position_embeddings.weight":
            value = torch.cat([value, torch.randn(77 - value.shape[0], value.shape[1])])
            key = "frame_position_embeddings.weight"
        official[key] = value.clone()
    torch.save(official, tmp_path / "pytorch_model.bin")
    loaded = _student(seed=5, load_finetuned=True, finetuned=str(tmp_path / "pytorch_model.bin"))
    for key, value in source.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


# ---------------------------------------------------------------- bad input
def test_a_teacher_checkpoint_that_does_not_match_its_config_names_the_keys(tmp_path):
    spec, _ = _teacher_files(tmp_path)
    other, _ = _teacher_files(tmp_path / "..", "xclip_retrieval", "meanP")  # no temporal layers
    spec["checkpoint"] = other["checkpoint"]
    with pytest.raises(
        KeyError, match=r"model.teachers.xclip .*missing \[.*temporal.frame_position"
    ):
        _student(teachers={"xclip": spec})


def test_a_teacher_trained_with_overrides_is_rebuilt_with_them(tmp_path):
    spec, reference = _teacher_files(tmp_path, temporal_layers=2)
    OmegaConf.save(
        OmegaConf.create({"model": tiny_model_cfg("seqTransf", arch="xclip_retrieval")}),
        spec["cfg_path"],
    )
    with pytest.raises(KeyError, match="unexpected.*resblocks.1"):
        _student(teachers={"xclip": spec})
    student = _student(teachers={"xclip": {**spec, "model_overrides": {"temporal_layers": 2}}})
    for key, value in reference.state_dict().items():
        assert torch.equal(student.teachers["xclip"].state_dict()[key], value), key


def test_a_teacher_with_another_frame_count_or_text_length_is_refused(tmp_path):
    spec, _ = _teacher_files(tmp_path, max_frames=12)
    with pytest.raises(ValueError, match="max_frames=12 but the student has 8"):
        _student(teachers={"xclip": spec})
    spec, _ = _teacher_files(tmp_path, max_txt_len=20)
    with pytest.raises(ValueError, match="max_txt_len=20 but the student has 16"):
        _student(teachers={"xclip": spec})


def test_an_unknown_teacher_lists_the_registered_ones(tmp_path):
    spec, _ = _teacher_files(tmp_path)
    assert {"xclip_retrieval", "xpool_retrieval"} <= set(registered_teachers())
    assert "clip4clip_retrieval" not in registered_teachers()
    with pytest.raises(KeyError, match=r"unknown teacher 'ts2net_retrieval'.*'xclip_retrieval'"):
        _student(teachers={"ts2": {**spec, "arch": "ts2net_retrieval"}})
    with pytest.raises(KeyError, match="unknown teacher 'clip4clip_retrieval'"):
        _student(teachers={"c4c": {**spec, "arch": "clip4clip_retrieval"}})
    with pytest.raises(FileNotFoundError, match="model.teachers.x.cfg_path"):
        _student(teachers={"x": {**spec, "cfg_path": str(tmp_path / "nope.yaml")}})
    with pytest.raises(KeyError, match=r"model.teachers.x.checkpoint"):
        _student(teachers={"x": {"cfg_path": spec["cfg_path"]}})
    with pytest.raises(KeyError, match=r"model.teachers.x: unknown key\(s\) \['options'\]"):
        _student(teachers={"x": {**spec, "options": ["model.max_frames=8"]}})
    with pytest.raises(FileNotFoundError, match=r"model.teachers.x.checkpoint: .*not found"):
        _student(teachers={"x": {**spec, "checkpoint": str(tmp_path / "gone.pth")}})


@pytest.mark.parametrize(
    "overrides,error",
    [
        ({"coarse_loss": "kl"}, "coarse_loss must be one of \\('pear', 'ce', 'l1'\\)"),
        ({"fine_loss": "mse"}, "fine_loss must be one of \\('ce', 'pear', 'l1'\\)"),
        ({"loss_weights": {"distill": 1.0}}, "loss_weights.distill: unknown loss term"),
    ],
)
def test_a_loss_option_that_does_not_exist_is_named(overrides, error):
    with pytest.raises((ValueError, KeyError), match=error):
        _student(**overrides)


def test_fine_teaching_needs_afa(tmp_path):
    spec, _ = _teacher_files(tmp_path)
    with pytest.raises(ValueError, match="fine-grained teaching teaches the AFA frame weights"):
        _student(afa=False, teachers={"xclip": spec})


def test_the_default_configs_build():
    for model_type in ("seqTransf", "meanP"):
        path = registry.get_model_class("teachclip_retrieval").default_config_path(model_type)
        cfg = OmegaConf.load(path).model
        assert cfg.arch == "teachclip_retrieval" and cfg.model_type == model_type
        assert "loss_weights" not in cfg  # the official ones of coarse_loss
        assert math.isclose(cfg.lr_scale_afa * 1e-4, 1e-3)
