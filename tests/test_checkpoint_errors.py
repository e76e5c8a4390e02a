"""Every retrieval checkpoint load path names the file and the config key (or argument)
that gave it when the file is refused as unsafe or cannot be read: a pickle that calls a
function outside torch's allow-list, and a checkpoint cut in half."""

import importlib.util
import os
from pathlib import Path

import retrieval_ext  # noqa: F401
from retrieval_ext.runners.runner import PortableRunner

import pytest
import torch
from conftest import REPO_ROOT
from lavis.common.registry import registry
from omegaconf import OmegaConf
from retrieval_helpers import TINY_CLIP, tiny_model_cfg

from plugins.compat.checkpoints import (
    CheckpointLoadError,
    UnsafeCheckpointError,
    load_checkpoint,
)


class _RunsCode:
    """Pickles as a call to os.system: a global no allow-list admits."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _state(arch="clip4clip_retrieval", model_type="seqTransf") -> dict:
    torch.manual_seed(0)
    return registry.get_model_class(arch).from_config(tiny_model_cfg(model_type)).state_dict()


def _write_bad(tmp_path: Path, kind: str, state: dict) -> Path:
    path = tmp_path / f"{kind}.pth"
    if kind == "malicious":
        torch.save({"model": state, "payload": _RunsCode(tmp_path / "pwned")}, path)
    else:
        torch.save({"model": state}, path)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    return path


# ---------------------------------------------------------------- the load paths
def _clip4clip_finetuned(path, tmp_path):
    cfg = tiny_model_cfg("seqTransf", load_finetuned=True, finetuned=str(path))
    registry.get_model_class("clip4clip_retrieval").from_config(cfg)


def _clip4clip_pretrained(path, tmp_path):
    registry.get_model_class("clip4clip_retrieval").from_config(
        tiny_model_cfg("meanP", pretrained=str(path))
    )


def _lavis_load_model_checkpoint(path, tmp_path):
    model = registry.get_model_class("clip4clip_retrieval").from_config(tiny_model_cfg())
    model.load_checkpoint(str(path))


def _teachclip_finetuned(path, tmp_path):
    cfg = tiny_model_cfg(
        "seqTransf", arch="teachclip_retrieval", load_finetuned=True, finetuned=str(path)
    )
    registry.get_model_class("teachclip_retrieval").from_config(cfg)


def _teacher_checkpoint(path, tmp_path):
    cfg_path = tmp_path / "xclip.yaml"
    OmegaConf.save({"model": tiny_model_cfg("seqTransf", arch="xclip_retrieval")}, cfg_path)
    teachers = {"xclip": {"cfg_path": str(cfg_path), "checkpoint": str(path)}}
    cfg = tiny_model_cfg("seqTransf", arch="teachclip_retrieval", teachers=teachers)
    registry.get_model_class("teachclip_retrieval").from_config(cfg)


def _runner(device="cpu"):
    runner = object.__new__(PortableRunner)  # only its checkpoint reading is exercised
    runner._device = torch.device(device)
    return runner


def _runner_resume(path, tmp_path):
    _runner()._load_checkpoint(str(path))


def _runner_best(path, tmp_path):
    runner = _runner()
    runner.best_checkpoint = str(path)
    runner._reload_best_model(None)


def _converter(path, tmp_path):
    import json

    script = REPO_ROOT / "tools" / "convert" / "convert_retrieval_checkpoint.py"
    spec = importlib.util.spec_from_file_location("convert_retrieval_checkpoint", script)
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    argv = ["--arch", "clip4clip_retrieval", "--model-type", "seqTransf", "--input", str(path),
            "--output", str(tmp_path / "out.pth"), "--max-frames", "8", "--max-words", "16",
            "--clip-config", json.dumps(TINY_CLIP), "--options", "temporal_layers=1"]  # fmt: skip
    assert tool.main(argv) == 1
    assert not (tmp_path / "out.pth").exists()


def _albef_cfg(config: str, tmp_path: Path, **overrides):
    cfg = OmegaConf.load(REPO_ROOT / "configs" / "lavis" / config / "embedded.yaml").model
    cfg.vit_depth = 1
    if config == "bagformer":
        (tmp_path / "entities.txt").write_text("red square\n")
        cfg.entity_dictionary = str(tmp_path / "entities.txt")
    return OmegaConf.merge(cfg, overrides)


def _albef(key):
    def load(path, tmp_path):
        overrides = {"pretrained": str(path)}
        if key == "finetuned":
            overrides = {"load_finetuned": True, "finetuned": str(path)}
        cfg = _albef_cfg("albef", tmp_path, **overrides)
        registry.get_model_class("albef_retrieval").from_config(cfg)

    return load


def _bagformer(key):
    def load(path, tmp_path):
        overrides = {"pretrained": str(path)}
        if key == "finetuned":
            overrides = {"load_finetuned": True, "finetuned": str(path)}
        cfg = _albef_cfg("bagformer", tmp_path, **overrides)
        registry.get_model_class("bagformer_retrieval").from_config(cfg)

    return load


def _albef_text_init(path, tmp_path):
    from plugins.compat.lavis_albef import load_text_init

    bert = tmp_path / "bert"
    bert.mkdir()
    os.replace(path, bert / "pytorch_model.bin")
    load_text_init(None, str(bert))


LOAD_PATHS = {
    # name: (load the file, the key the error must name)
    "clip4clip finetuned": (_clip4clip_finetuned, "model.finetuned"),
    "clip4clip pretrained": (_clip4clip_pretrained, "model.pretrained"),
    "LAVIS load_model checkpoint": (_lavis_load_model_checkpoint, "load_model(checkpoint=...)"),
    "teachclip finetuned": (_teachclip_finetuned, "model.finetuned"),
    "teachclip teacher checkpoint": (_teacher_checkpoint, "model.teachers.xclip.checkpoint"),
    "runner resume": (_runner_resume, "run.resume_ckpt_path"),
    "runner best": (_runner_best, "the best checkpoint of this run (run.output_dir)"),
    "converter": (_converter, "--input"),
    "albef pretrained": (_albef("pretrained"), "model.pretrained"),
    "albef finetuned": (_albef("finetuned"), "model.finetuned"),
    "bagformer pretrained": (_bagformer("pretrained"), "model.pretrained"),
    "bagformer finetuned": (_bagformer("finetuned"), "model.finetuned"),
    "albef text_init": (_albef_text_init, "model.text_init"),
}


@pytest.mark.parametrize("kind", ["malicious", "truncated"])
@pytest.mark.parametrize("name", list(LOAD_PATHS))
def test_a_refused_or_corrupt_checkpoint_is_named_with_its_key(name, kind, tmp_path, capsys):
    load, key = LOAD_PATHS[name]
    path = _write_bad(tmp_path, kind, {"w": torch.ones(2)})
    error_class = UnsafeCheckpointError if kind == "malicious" else CheckpointLoadError
    if name == "converter":
        load(path, tmp_path)
        message = capsys.readouterr().err
    else:
        with pytest.raises(error_class) as raised:
            load(path, tmp_path)
        message = str(raised.value)
    named = path if name != "albef text_init" else tmp_path / "bert" / "pytorch_model.bin"
    assert f"{key} = {named}" in message or f"{key}: {named}" in message, message
    if kind == "malicious":
        assert "weights_only" in message and "posix.system" in message
    else:
        assert "not a readable PyTorch checkpoint" in message
    assert not (tmp_path / "pwned").exists()


# ---------------------------------------------------------------- the helper
def test_the_helper_names_the_problem_and_what_to_do(tmp_path):
    malicious = _write_bad(tmp_path, "malicious", {"w": torch.ones(2)})
    with pytest.raises(UnsafeCheckpointError) as raised:
        load_checkpoint(malicious, "model.finetuned")
    message = str(raised.value)
    assert message.startswith(f"model.finetuned = {malicious}: refused")
    assert "weights_only=False" in message and "re-save" in message
    assert raised.value.for_key("run.resume_ckpt_path").key == "run.resume_ckpt_path"
    for content, reason in ((b"", "EOFError"), (b"not a checkpoint\n", "not a readable")):
        (tmp_path / "bad.pth").write_bytes(content)
        with pytest.raises(CheckpointLoadError, match=reason):
            load_checkpoint(tmp_path / "bad.pth", "model.pretrained")
    with pytest.raises(FileNotFoundError, match=r"model.pretrained: checkpoint not found"):
        load_checkpoint(tmp_path / "gone.pth", "model.pretrained")
    assert not (tmp_path / "pwned").exists()


def test_the_errors_survive_pickling_across_processes(tmp_path):
    import pickle

    error = UnsafeCheckpointError(tmp_path / "x.pth", "refused", "model.finetuned")
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is UnsafeCheckpointError and str(copy) == str(error)


# ---------------------------------------------------------------- no OpenAI file needed
def test_a_fine_tuned_checkpoint_needs_no_openai_clip_file(tmp_path):
    """With ``pretrained`` set (as the default configs set it from $PLUGZOO_CLIP_DIR) and a
    fine-tuned checkpoint given, the CLIP architecture comes from the checkpoint: the
    OpenAI file is never read, so a teacher needs only its own checkpoint."""
    from lavis.models.clip_models.model import build_model_from_openai_state_dict

    # an OpenAI-layout CLIP (heads = width / 64) fine-tuned into a CLIP4Clip checkpoint
    torch.manual_seed(0)
    openai_like = registry.get_model_class("clip4clip_retrieval").from_config(tiny_model_cfg())
    openai_like.clip = build_model_from_openai_state_dict(
        {k: v for k, v in openai_like.clip.state_dict().items()}
    ).float()
    checkpoint = tmp_path / "finetuned.pth"
    torch.save({"model": openai_like.state_dict()}, checkpoint)
    missing_clip_dir = tmp_path / "no_clip_here"  # holds no ViT-B-32.pt
    missing_clip_dir.mkdir()
    cfg = tiny_model_cfg(
        "meanP",
        pretrained=str(missing_clip_dir),
        load_finetuned=True,
        finetuned=str(checkpoint),
        clip_config=None,
    )
    model = registry.get_model_class("clip4clip_retrieval").from_config(cfg)
    for key, value in openai_like.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key
    # and the same for a teacher whose config reads the (absent) OpenAI file
    cfg_path = tmp_path / "xclip.yaml"
    teacher_cfg = tiny_model_cfg("meanP", arch="xclip_retrieval", pretrained=str(missing_clip_dir))
    OmegaConf.save({"model": teacher_cfg}, cfg_path)
    torch.manual_seed(1)
    xclip = registry.get_model_class("xclip_retrieval").from_config(tiny_model_cfg("meanP"))
    xclip.clip = openai_like.clip
    torch.save({"model": xclip.state_dict()}, tmp_path / "xclip.pth")
    teachers = {"xclip": {"cfg_path": str(cfg_path), "checkpoint": str(tmp_path / "xclip.pth")}}
    student = registry.get_model_class("teachclip_retrieval").from_config(
        tiny_model_cfg("meanP", arch="teachclip_retrieval", teachers=teachers)
    )
    assert torch.equal(student.teachers["xclip"].clip.visual.proj, openai_like.clip.visual.proj)
    # without a checkpoint the OpenAI file is still required, and named
    with pytest.raises(FileNotFoundError, match="CLIP weights not found"):
        registry.get_model_class("clip4clip_retrieval").from_config(
            tiny_model_cfg("meanP", pretrained=str(missing_clip_dir))
        )


def test_a_checkpoint_that_does_not_match_the_model_names_the_file_and_the_key():
    from retrieval_ext.models.common import load_model_state

    model = torch.nn.Linear(2, 2)
    with pytest.raises(KeyError, match=r"run.resume_ckpt_path = /x/ckpt.pth: .*unexpected \['w'\]"):
        load_model_state(model, {"w": torch.zeros(1)}, "/x/ckpt.pth", "run.resume_ckpt_path")
