"""CLIP4Clip as the official code trains and loads it: BertAdam, clipping, the warm-up +
cosine schedule, the no-decay rule, official checkpoints, LAVIS's load_model entry points,
the features TeachCLIP builds on, and frozen submodules."""

import logging
import math

import retrieval_ext  # noqa: F401
from retrieval_ext.models.clip4clip import convert_official_state_dict
from retrieval_ext.models.common import all_gather_with_grad
from retrieval_ext.runners.optim import BertAdam, clip_gradients_before_each_step

import pytest
import torch
import torch.nn.functional as F
from lavis.common.registry import registry
from lavis.models.clip_models.model import CLIP, QuickGELU
from omegaconf import OmegaConf
from retrieval_helpers import TINY_CLIP, tiny_model_cfg, write_tiny_embedded

from plugins.video import moving_square_clip, write_mp4


def _model(model_type="meanP", **overrides):
    torch.manual_seed(0)
    return registry.get_model_class("clip4clip_retrieval").from_config(
        tiny_model_cfg(model_type, **overrides)
    )


def _samples(batch=2, frames=4):
    torch.manual_seed(1)
    return {
        "video": torch.randn(batch, frames, 3, 32, 32),
        "video_mask": torch.ones(batch, frames, dtype=torch.long),
        "text_input": ["a red square moves left", "a blue bar moves up"][:batch],
    }


# ---------------------------------------------------------------- optimiser recipe
def _clip4clip_bert_adam_reference(param, grads, lr, wd, b1=0.9, b2=0.98, e=1e-6):
    """CLIP4Clip's BertAdam update written out from modules/optimization.py (no bias
    correction, eps outside the root, decay added to the update)."""
    m, v = torch.zeros_like(param), torch.zeros_like(param)
    for grad in grads:
        m = b1 * m + (1 - b1) * grad
        v = b2 * v + (1 - b2) * grad * grad
        param = param - lr * (m / (v.sqrt() + e) + wd * param)
    return param


def test_bert_adam_is_clip4clips_update_not_adamw():
    torch.manual_seed(0)
    start = torch.randn(5)
    grads = [torch.randn(5) for _ in range(4)]
    param = torch.nn.Parameter(start.clone())
    optimizer = BertAdam([param], lr=0.01, weight_decay=0.2)
    for grad in grads:
        param.grad = grad.clone()
        optimizer.step()
    expected = _clip4clip_bert_adam_reference(start, grads, lr=0.01, wd=0.2)
    assert torch.allclose(param.detach(), expected, atol=1e-7)
    adamw = torch.nn.Parameter(start.clone())
    torch_optimizer = torch.optim.AdamW([adamw], lr=0.01, weight_decay=0.2, betas=(0.9, 0.98))
    for grad in grads:
        adamw.grad = grad.clone()
        torch_optimizer.step()
    assert not torch.allclose(adamw.detach(), expected, atol=1e-4)  # bias correction differs


@pytest.mark.parametrize("mode", ["global", "per_parameter"])
def test_gradient_clipping_runs_before_each_step(mode):
    a, b = torch.nn.Parameter(torch.zeros(1)), torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([a, b], lr=1.0)
    clip_gradients_before_each_step(optimizer, max_norm=1.0, mode=mode)
    a.grad, b.grad = torch.tensor([3.0]), torch.tensor([4.0])
    optimizer.step()
    if mode == "global":  # the joint norm 5 scaled to 1
        assert a.item() == pytest.approx(-0.6) and b.item() == pytest.approx(-0.8)
    else:  # each gradient to norm 1 on its own (CLIP4Clip's BertAdam)
        assert a.item() == pytest.approx(-1.0) and b.item() == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="grad_clip_mode must be one of"):
        clip_gradients_before_each_step(optimizer, 1.0, "layerwise")


def test_progress_schedule_is_clip4clips_warmup_cosine_scaled_per_group():
    params = [torch.nn.Parameter(torch.zeros(1)) for _ in range(2)]
    optimizer = BertAdam([{"params": [params[0]]}, {"params": [params[1]], "lr_scale": 1e-3}])
    schedule = registry.get_lr_scheduler_class("warmup_cosine_progress_group_lr")(
        optimizer, max_epoch=4, init_lr=1e-4, iters_per_epoch=25, warmup_proportion=0.1
    )
    rates = {}
    for epoch in range(4):
        for step in range(25):
            rates[epoch * 25 + step] = schedule.step(cur_epoch=epoch, cur_step=step)
            assert optimizer.param_groups[1]["lr"] == pytest.approx(rates[epoch * 25 + step] * 1e-3)
    assert rates[0] == 0.0 and rates[5] == pytest.approx(0.5e-4)  # linear warm-up over 10%
    # after warm-up: the cosine of the *global* progress (CLIP4Clip's warmup_cosine)
    assert rates[10] == pytest.approx(1e-4 * 0.5 * (1 + math.cos(math.pi * 0.1)))
    assert rates[50] == pytest.approx(0.5e-4)
    assert rates[99] == pytest.approx(1e-4 * 0.5 * (1 + math.cos(math.pi * 0.99)))


def test_clip4clip_no_decay_rule_decays_norms_embeddings_and_the_logit_scale():
    # every CLIP tensor trains (freeze_layer_num 0 would leave the embeddings out)
    model = _model("seqTransf", lr_scale_clip=1e-3, freeze_layer_num=-1)
    decayed = {
        name
        for group in model.get_optimizer_params(0.2)
        if group["weight_decay"] > 0
        for name, p in model.named_parameters()
        if any(p is q for q in group["params"])
    }
    for name in (
        "clip.logit_scale",
        "clip.ln_final.weight",
        "clip.token_embedding.weight",
        "clip.positional_embedding",
        "temporal.frame_position_embeddings.weight",
    ):
        assert name in decayed, name
    assert "clip.ln_final.bias" not in decayed
    standard = _model("seqTransf", no_decay_rule="standard")
    standard_decayed = [
        g["name"] for g in standard.get_optimizer_params(0.2) if g["weight_decay"] > 0
    ]
    assert all(g.endswith("/decay") for g in standard_decayed)
    assert standard.is_decayed("clip.ln_final.weight", standard.clip.ln_final.weight) is False
    groups = model.get_optimizer_params(0.2)
    assert [g["name"] for g in groups][:2] == ["new/decay", "new/no_decay"]  # base rate first
    with pytest.raises(ValueError, match="no_decay_rule must be one of"):
        _model(no_decay_rule="bert")


def test_the_runner_builds_bert_adam_and_logs_every_groups_rate(tmp_path, monkeypatch):
    from retrieval_ext.launch import build

    from plugins.paths import CONFIG_DIR

    data = write_tiny_embedded(tmp_path / "data", train=2, val=1, test=1)
    prefix = "datasets.embedded_text_video.build_info"
    options = [
        f"{prefix}.annotations.train.storage={data / 'annotations' / 'train.json'}",
        f"{prefix}.annotations.val.storage={data / 'annotations' / 'val.json'}",
        f"{prefix}.annotations.test.storage={data / 'annotations' / 'test.json'}",
        f"{prefix}.videos.storage={data / 'videos'}",
        f"run.output_dir={tmp_path / 'out'}",
        "run.job_id=job",
        "run.batch_size_train=4",
        "run.max_epoch=2",
        "run.optimizer=bert_adam",
        "run.grad_clip_norm=1.0",
        "run.lr_sched=warmup_cosine_progress_group_lr",
        "run.init_lr=1e-4",
        "model.lr_scale_clip=0.001",
        "model.clip_config.vision_cfg.layers=1",
        "model.clip_config.text_cfg.layers=1",
    ]
    monkeypatch.chdir(tmp_path)
    *_, runner = build(str(CONFIG_DIR / "lavis/clip4clip/embedded_seqTransf.yaml"), options)
    assert isinstance(runner.optimizer, BertAdam)
    first = runner.optimizer.param_groups[0]
    assert first["name"].startswith("new/")  # the rate LAVIS's progress line prints
    assert first["betas"] == (0.9, 0.98)
    with torch.no_grad():  # the runner clamps the parameter after every step
        runner.unwrap_dist_model(runner.model).clip.logit_scale.fill_(math.log(300.0))
    stats = runner.train_epoch(0)
    scale = runner.unwrap_dist_model(runner.model).clip.logit_scale.item()
    assert scale <= math.log(100.0) + 1e-6
    rates = {key: float(value) for key, value in stats.items() if key.startswith("lr_")}
    assert rates["lr_clip/decay"] == pytest.approx(rates["lr_new/decay"] * 1e-3)
    assert 0 < rates["lr_clip/decay"] < 1e-6  # LAVIS's "{:.3f}" would print 0.000


# ---------------------------------------------------------------- official checkpoints
OFFICIAL_BLOCK = {  # CLIP4Clip's TransformerClip block: suffix -> shape in units of width
    "attn.in_proj_weight": (3, 1),
    "attn.in_proj_bias": (3,),
    "attn.out_proj.weight": (1, 1),
    "attn.out_proj.bias": (1,),
    "ln_1.weight": (1,),
    "ln_1.bias": (1,),
    "mlp.c_fc.weight": (4, 1),
    "mlp.c_fc.bias": (4,),
    "mlp.c_proj.weight": (1, 4),
    "mlp.c_proj.bias": (1,),
    "ln_2.weight": (1,),
    "ln_2.bias": (1,),
}


def _official_seq_transf_state(width=64, layers=1, clip=None, half=True):
    """A state dict with the official names and shapes: CLIP4Clip's ``clip.*`` (OpenAI's
    layout), the 77-row frame position table and ``transformerClip.resblocks.*``; CLIP
    weights in fp16 as CLIP4Clip keeps them."""
    torch.manual_seed(5)
    clip = clip or CLIP(**TINY_CLIP)
    state = {
        f"clip.{k}": (v.half() if half and v.is_floating_point() else v)
        for k, v in clip.state_dict().items()
    }
    state["frame_position_embeddings.weight"] = torch.randn(77, width)
    for layer in range(layers):
        for suffix, units in OFFICIAL_BLOCK.items():
            shape = tuple(u * width for u in units)
            state[f"transformerClip.resblocks.{layer}.{suffix}"] = torch.randn(shape)
    return state


def test_official_checkpoint_converts_and_loads(tmp_path):
    official = _official_seq_transf_state()
    path = tmp_path / "pytorch_model.bin"
    torch.save(official, path)
    model = registry.get_model_class("clip4clip_retrieval").from_config(
        tiny_model_cfg("seqTransf", load_finetuned=True, finetuned=str(path))
    )
    table = model.temporal.frame_position_embeddings.weight
    assert torch.equal(table, official["frame_position_embeddings.weight"][:8])
    block = model.temporal.transformer.resblocks[0]
    assert torch.equal(
        block.mlp.c_fc.weight, official["transformerClip.resblocks.0.mlp.c_fc.weight"]
    )
    assert torch.equal(model.clip.visual.proj, official["clip.visual.proj"].float())  # fp16 -> fp32
    # LAVIS's load_model(..., checkpoint=...) path: the same conversion, names checked
    fresh = _model("seqTransf")
    fresh.load_checkpoint(str(path))
    assert torch.equal(fresh.temporal.frame_position_embeddings.weight, table)
    tight = {**official, "cross.embeddings.position_embeddings.weight": torch.zeros(1)}
    with pytest.raises(KeyError, match="unexpected keys.*cross.embeddings"):
        convert_official_state_dict(tight, max_frames=8)
    with pytest.raises(ValueError, match="77 rows, fewer than max_frames=80"):
        convert_official_state_dict(official, max_frames=80)


def test_the_conversion_tool_writes_a_checkpoint_the_config_loads(tmp_path):
    import json
    import subprocess
    import sys

    from conftest import REPO_ROOT

    official = _official_seq_transf_state()
    torch.save(official, tmp_path / "pytorch_model.bin")
    out = tmp_path / "converted.pth"
    result = subprocess.run(
        [sys.executable, str(REPO_ROOT / "tools" / "convert" / "convert_retrieval_checkpoint.py"),
         "--arch", "clip4clip_retrieval", "--model-type", "seqTransf",
         "--input", str(tmp_path / "pytorch_model.bin"), "--output", str(out),
         "--max-frames", "8", "--max-words", "16", "--clip-config", json.dumps(TINY_CLIP),
         "--options", "temporal_layers=1"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "unplaced (0)" in result.stdout and "missing (0)" in result.stdout
    model = registry.get_model_class("clip4clip_retrieval").from_config(
        tiny_model_cfg("seqTransf", load_finetuned=True, finetuned=str(out))
    )
    table = official["frame_position_embeddings.weight"][:8]
    assert torch.equal(model.temporal.frame_position_embeddings.weight, table)


def test_seq_transf_is_quick_gelu_and_the_logit_scale_is_clamped_before_each_use():
    model = _model("seqTransf")  # its CLIP uses nn.GELU (quick_gelu: false)
    assert not isinstance(model.clip.transformer.resblocks[0].mlp.gelu, QuickGELU)
    assert isinstance(model.temporal.transformer.resblocks[0].mlp.gelu, QuickGELU)
    with torch.no_grad():
        model.clip.logit_scale.fill_(math.log(200.0))
    # the parameter itself, as CLIP4Clip's loop clamps it: clamp_(max=log 100), and the
    # gradient still reaches it at the bound (the official clamp leaves it trainable)
    out = model(_samples(batch=2))
    assert out.logit_scale.item() == pytest.approx(100.0)
    assert model.clip.logit_scale.item() == pytest.approx(math.log(100.0))
    out.loss.backward()
    assert model.clip.logit_scale.grad is not None and model.clip.logit_scale.grad != 0
    free = _model("seqTransf", logit_scale_max=None)
    with torch.no_grad():
        free.clip.logit_scale.fill_(math.log(200.0))
    assert free.logit_scale().item() == pytest.approx(200.0)
    assert free.clip.logit_scale.item() == pytest.approx(math.log(200.0))


@pytest.mark.parametrize(
    "arch, model_type",
    [
        ("clip4clip_retrieval", "seqTransf"),
        ("xclip_retrieval", "seqTransf"),
        ("xpool_retrieval", "xpool"),
    ],
)
def test_a_checkpoint_never_holds_a_logit_scale_above_its_bound(tmp_path, arch, model_type):
    """The last optimiser step can leave the parameter above log(100) (the next use would
    clamp it); a saved state dict, read by code that takes a plain exp(), must not."""
    torch.manual_seed(0)
    model = registry.get_model_class(arch).from_config(tiny_model_cfg(model_type, arch=arch))
    optimizer = torch.optim.SGD([model.clip.logit_scale], lr=1.0)
    with torch.no_grad():
        model.clip.logit_scale.fill_(math.log(100.0))
    model.clip.logit_scale.grad = torch.full_like(model.clip.logit_scale, -0.0042)
    optimizer.step()  # what a step past the bound leaves behind
    assert model.clip.logit_scale.item() > math.log(100.0)
    torch.save(model.state_dict(), tmp_path / "checkpoint.pth")
    saved = torch.load(tmp_path / "checkpoint.pth", weights_only=True)["clip.logit_scale"]
    assert saved.exp().item() == pytest.approx(100.0)
    free = registry.get_model_class(arch).from_config(
        tiny_model_cfg(model_type, arch=arch, logit_scale_max=None)
    )
    with torch.no_grad():
        free.clip.logit_scale.fill_(math.log(200.0))
    assert free.state_dict()["clip.logit_scale"].exp().item() == pytest.approx(200.0)


# ---------------------------------------------------------------- LAVIS entry points
def _openai_format_folder(tmp_path):
    """A tiny CLIP saved under the default config's file name, OpenAI's key layout."""
    torch.manual_seed(3)
    text_cfg = {**TINY_CLIP["text_cfg"], "heads": 1}
    clip = CLIP(**{**TINY_CLIP, "text_cfg": text_cfg, "quick_gelu": True})
    folder = tmp_path / "clip"
    folder.mkdir()
    torch.save(clip.state_dict(), folder / "ViT-B-32.pt")
    return folder, clip


def test_load_model_and_preprocess_work_as_in_lavis(tmp_path, monkeypatch):
    from lavis.models import load_model, load_model_and_preprocess

    folder, clip = _openai_format_folder(tmp_path)
    monkeypatch.setenv("PLUGZOO_CLIP_DIR", str(folder))
    model, vis, txt = load_model_and_preprocess("clip4clip_retrieval", "meanP", is_eval=True)
    assert not model.training
    for key, value in clip.state_dict().items():
        assert torch.equal(model.clip.state_dict()[key], value), key
    assert vis["eval"].sampling == "fps" and vis["eval"].num_frames == 12
    path = write_mp4(tmp_path / "clip.mp4", moving_square_clip(num_frames=16, size=32), fps=4)
    sample = vis["eval"](str(path))
    assert sample["video"].shape == (12, 3, 224, 224) and sample["video_mask"].sum() == 4
    assert txt["eval"]("A Red Square!") == "a red square"
    again = load_model("clip4clip_retrieval", "seqTransf")
    assert torch.equal(again.clip.visual.proj, clip.visual.proj)


def test_a_model_built_without_weights_says_so(caplog):
    with caplog.at_level(logging.WARNING):
        _model("meanP")
    assert "RANDOM weights" in caplog.text and "model.pretrained" in caplog.text


# ---------------------------------------------------------------- features for TeachCLIP
def test_frame_and_word_features_are_exposed_with_shapes():
    model = _model("seqTransf").eval()
    torch.manual_seed(1)
    video = torch.randn(2, 4, 3, 32, 32)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    with torch.no_grad():
        frames = model.encode_frames(video)
        temporal = model.temporal_frame_features(frames, mask)
        assert frames.shape == temporal.shape == (2, 4, 64)
        # pool_frames is the masked mean of the normalised temporal features, normalised
        normed = F.normalize(temporal, dim=-1) * mask[..., None]
        expected = F.normalize(normed.sum(1) / mask.sum(1, keepdim=True), dim=-1)
        assert torch.allclose(model.pool_frames(frames, mask), expected, atol=1e-6)
        tokens = model.tokenize(["a red square moves left", "up"])
        sentence, words, word_mask = model.encode_text_tokens(tokens)
    assert words.shape == (2, 16, 64) and word_mask.shape == (2, 16)
    assert word_mask.sum(1).tolist() == [(tokens[0] != 0).sum().item(), 3]  # sot, "up", eot
    # id 0 is also a BPE token ("!" inside a word): the mask comes from positions
    inner = tokens[1:2].clone()
    inner[0, 1] = 0
    assert model.encode_text_tokens(inner)[2][0].tolist()[:4] == [1, 1, 1, 0]
    assert torch.equal(sentence, model.encode_text(tokens))
    assert torch.equal(words[1, 2], sentence[1])  # the end token's output is the sentence
    assert all_gather_with_grad(sentence) is sentence  # one process: nothing to gather


def test_frozen_submodules_stay_in_eval_mode_when_training():
    model = _model("seqTransf")
    model.clip.requires_grad_(False)
    model.train()
    assert model.training and model.temporal.training
    assert not model.clip.training and not model.clip.transformer.resblocks[0].training
    model.clip.ln_final.requires_grad_(True)  # partly trainable: trains
    model.train()
    assert model.clip.training and not model.clip.visual.training
    model.eval()
    assert not model.temporal.training


def test_config_from_omegaconf_keeps_clip4clip_defaults():
    model = registry.get_model_class("clip4clip_retrieval").from_config(
        OmegaConf.create({"model_type": "meanP", "clip_config": TINY_CLIP, "max_txt_len": 16})
    )
    assert model.logit_scale_max == 100.0 and model.no_decay_rule == "clip4clip"


def test_checkpoints_keep_frozen_parameters_unless_a_model_excludes_them(tmp_path):
    from retrieval_ext.models.clip4clip import load_finetuned
    from retrieval_ext.models.common import checkpoint_state

    model = _model("seqTransf")
    model.temporal.requires_grad_(False)  # frozen, like ALBEF's momentum encoders
    state = checkpoint_state(model)
    assert "temporal.frame_position_embeddings.weight" in state
    model.checkpoint_exclude_prefixes = ("temporal.",)  # loaded from its own file
    assert not any(k.startswith("temporal.") for k in checkpoint_state(model))
    torch.save({"model": checkpoint_state(model)}, tmp_path / "partial.pth")
    load_finetuned(model, tmp_path / "partial.pth")  # the excluded keys may be missing
    del model.checkpoint_exclude_prefixes
    with pytest.raises(KeyError, match="missing.*temporal"):
        load_finetuned(model, tmp_path / "partial.pth")


def test_a_checkpoint_without_its_frozen_layers_loads_them_from_pretrained(tmp_path):
    """LAVIS's RunnerBase saves trainable parameters only: the frozen CLIP layers come from
    ``model.pretrained``; without it the error names the parameters left out."""
    folder, clip = _openai_format_folder(tmp_path)
    cfg = tiny_model_cfg("seqTransf", pretrained=str(folder / "ViT-B-32.pt"))
    cfg.clip_config = {**TINY_CLIP, "text_cfg": {**TINY_CLIP["text_cfg"], "heads": 1}}
    cfg.clip_config.quick_gelu = True
    torch.manual_seed(2)
    model = registry.get_model_class("clip4clip_retrieval").from_config(cfg)
    with torch.no_grad():
        model.clip.ln_final.weight.add_(1.0)  # a trained change to keep
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    state = {k: v for k, v in model.state_dict().items() if k not in frozen}  # as RunnerBase
    assert "clip.token_embedding.weight" not in state
    path = str(tmp_path / "runner_base.pth")
    torch.save({"model": state}, path)
    reloaded = registry.get_model_class("clip4clip_retrieval").from_config(
        OmegaConf.merge(cfg, {"load_finetuned": True, "finetuned": path})
    )
    for key, value in model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value), key
    with pytest.raises(KeyError, match="missing frozen parameters.*model.pretrained"):
        registry.get_model_class("clip4clip_retrieval").from_config(
            OmegaConf.merge(cfg, {"pretrained": "", "load_finetuned": True, "finetuned": path})
        )
