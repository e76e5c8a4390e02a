"""CLIP4Clip and TeachCLIP exported into LAVIS 1.0.2's source, run the way LAVIS runs them.

The pinned sdist is extracted, the ``teachclip`` export (with the CLIP4Clip base) applied,
and everything that checks the exported tree runs in a fresh interpreter through
``plugins/export/shim.py`` (test-only: plugzoo cannot be imported there) with the exported
tree first on ``sys.path``. LAVIS's sdist has no ``train.py``; the run script does what it
does (``Config``, ``setup_task``, the task's datasets and model, ``RunnerBase``) and then
one training epoch of one step and one evaluation through ``RunnerBase``'s own
``train_epoch`` and ``eval_epoch``. Two defects of LAVIS 1.0.2's ``RunnerBase`` on a
machine without CUDA are worked around in that script, and only there: its loaders open a
CUDA stream (``PrefetchLoader``), and its ``model`` property returns None for a model
already on its device. Neither is part of the contribution.
"""

import json
import shutil
import subprocess
import sys

import retrieval_ext  # noqa: F401
from retrieval_ext.datasets.synthetic import write_video_text_dataset

import pytest
import torch
from conftest import run_exported_script
from lavis.common.registry import registry
from omegaconf import OmegaConf
from retrieval_helpers import TINY_CLIP, tiny_model_cfg

from plugins.export.core import newer_syntax
from plugins.export.lavis_teachclip import (
    BASE_SOURCES,
    CHECKPOINT,
    PROCESSES,
    TEACHCLIP_SOURCES,
    export_clip4clip,
    export_teachclip,
    has_base,
)
from plugins.export.sources import formatter_env
from plugins.paths import REPO_ROOT

pytestmark = pytest.mark.slow

# the exported models, each with a tiny config (model type, extra keys)
MODELS = {
    "clip4clip_seqTransf": ("clip4clip_retrieval", "seqTransf", {}),
    "clip4clip_meanP": ("clip4clip_retrieval", "meanP", {}),
    "teachclip_seqTransf": ("teachclip_retrieval", "seqTransf", {}),
    "xclip_seqTransf": ("xclip_retrieval", "seqTransf", {}),
    "xpool": ("xpool_retrieval", "xpool", {}),
}


@pytest.fixture(scope="module")
def exported(lavis_src, black_env, tmp_path_factory):
    """The LAVIS source with CLIP4Clip and TeachCLIP exported into it."""
    del black_env  # the export formats with it
    host = tmp_path_factory.mktemp("lavis-teachclip") / "LAVIS"
    shutil.copytree(lavis_src, host)
    tree = export_teachclip(lavis_src)
    tree.write(host)
    return host, tree


def test_export_is_deterministic_black_flake8_clean_python37(lavis_src, exported, black_env):
    host, tree = exported
    assert export_teachclip(lavis_src).files == tree.files
    new = sorted(p for p in tree.files if p.endswith(".py") and not (lavis_src / p).is_file())
    command = [sys.executable, "-m", "black", "--check", "--line-length", "88", "--quiet"]
    done = subprocess.run(
        [*command, *(str(host / p) for p in new)], env=black_env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    for relative in tree.files:
        if relative.endswith(".py"):
            assert newer_syntax(tree.files[relative]) == [], relative
    flake8 = formatter_env("flake8")  # LAVIS's pre-commit gate: syntax and undefined names
    if flake8 is None:
        pytest.skip("the pinned flake8 is not in the export cache (tools/setup_env.sh)")
    python = sorted(str(host / p) for p in tree.files if p.endswith(".py"))
    gate = [sys.executable, "-m", "flake8", "--select=E9,F63,F7,F82", *python]
    done = subprocess.run(gate, env=flake8, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    assert set(BASE_SOURCES.values()) | set(TEACHCLIP_SOURCES.values()) | {CHECKPOINT} <= set(new)


def test_teachclip_on_a_tree_with_the_base_writes_only_its_own_files(lavis_src, tmp_path):
    host = tmp_path / "LAVIS"
    shutil.copytree(lavis_src, host)
    export_clip4clip(lavis_src, formatted=False).write(host)
    assert has_base(host) and not has_base(lavis_src)
    tree = export_teachclip(host, formatted=False)
    assert not set(BASE_SOURCES.values()) & set(tree.files)
    assert set(TEACHCLIP_SOURCES.values()) <= set(tree.files)
    models = tree.files["lavis/models/__init__.py"]
    assert models.count("import CLIP4ClipRetrieval") == 1  # the base's line, kept once
    assert "import TeachCLIPRetrieval" in models


LOOKUP = """
import sys
from pathlib import Path
from omegaconf import OmegaConf
from lavis.common.registry import registry
from lavis.models import load_model

host = Path.cwd().resolve()
# LAVIS's own entry point finds both models in the exported tree, with their default configs
for name in ("clip4clip_retrieval", "teachclip_retrieval"):
    model = load_model(name, "meanP")
    path = Path(sys.modules[type(model).__module__].__file__).resolve()
    assert host in path.parents, path
for kind, name, module in (
    ("task", "text_video_retrieval", "lavis.tasks.text_video_retrieval"),
    ("processor", "clip4clip_video_eval", "lavis.processors.clip4clip_processors"),
    ("builder", "msrvtt_text_video", "lavis.datasets.builders.text_video_retrieval_builder"),
    ("lr_scheduler", "linear_warmup_cosine_group_lr", "lavis.common.optims"),
):
    if kind == "lr_scheduler":
        import lavis.common.optims  # noqa: F401  (LAVIS's train.py imports it)
    found = getattr(registry, f"get_{kind}_class")(name)
    assert found is not None and found.__module__ == module, (kind, name, found)
# every model type's default config builds (with a tiny CLIP)
tiny = OmegaConf.create(sys.argv[1])
for name in ("clip4clip_retrieval", "teachclip_retrieval", "xclip_retrieval", "xpool_retrieval"):
    cls = registry.get_model_class(name)
    for model_type in cls.PRETRAINED_MODEL_CONFIG_DICT:
        cfg = OmegaConf.merge(OmegaConf.load(cls.default_config_path(model_type)).model, tiny)
        cls.from_config(cfg)
print("ok")
"""


def test_lavis_load_model_finds_the_models_in_the_exported_tree(exported):
    host, _ = exported
    tiny = OmegaConf.to_yaml(
        OmegaConf.create({"clip_config": TINY_CLIP, "max_txt_len": 16, "max_frames": 8})
    )
    done = run_exported_script(host, "check_lookup.py", LOOKUP, tiny)
    assert done.stdout.strip().endswith("ok")


RECIPES = """
import glob, sys, types
import torch
from lavis.common.config import Config
from lavis.common.registry import registry
import lavis.common.optims  # noqa: F401
import lavis.runners  # noqa: F401
from lavis.runners import RunnerBase

seen = warmed = 0
for path in sorted(glob.glob("lavis/projects/*/*/*.yaml")):
    if not path.split("/")[2] in ("clip4clip", "teachclip"):
        continue
    cfg = Config(types.SimpleNamespace(cfg_path=path, options=None))
    config = cfg.config
    run = config.run
    assert registry.get_task_class(run.task) is not None, path
    assert registry.get_runner_class(run.runner) is not None, path
    assert registry.get_lr_scheduler_class(run.lr_sched) is not None, path
    for name in config.datasets:
        assert registry.get_builder_class(name) is not None, (path, name)
    seen += 1
    if run.evaluate:
        continue
    # the schedule RunnerBase's own lr_scheduler property builds from the recipe
    optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=run.init_lr)
    runner = types.SimpleNamespace(_lr_sched=None, config=cfg, optimizer=optimizer,
                                   max_epoch=int(run.max_epoch), min_lr=float(run.min_lr),
                                   init_lr=float(run.init_lr))
    schedule = RunnerBase.lr_scheduler.fget(runner)
    rates = []
    for step in (0, run.warmup_steps // 2, run.warmup_steps):
        schedule.step(cur_epoch=0, cur_step=step)
        rates.append(optimizer.param_groups[0]["lr"])
    assert rates[0] < rates[1] < rates[2] == float(run.init_lr), (path, rates)
    warmed += 1
print(seen, warmed)
"""


def test_every_exported_recipe_resolves_and_warms_up_under_runner_base(exported):
    """Each recipe resolves through LAVIS's ``Config``; each training recipe's schedule, as
    ``RunnerBase`` builds it, starts below ``init_lr`` and reaches it at the warm-up's end
    (``run.warmup_lr`` unset would start at ``init_lr``); its per-process batch times the
    commands' processes is plugzoo's batch."""
    host, tree = exported
    recipes = [p for p in tree.files if p.startswith("lavis/projects/") and p.endswith(".yaml")]
    train = [p for p in recipes if "/train/" in p]
    done = run_exported_script(host, "check_recipes.py", RECIPES)
    seen, warmed = map(int, done.stdout.strip().splitlines()[-1].split())
    assert seen == len(recipes) > 0 and warmed == len(train) > 0
    for relative in recipes:
        family, name = relative.split("/")[2], relative.rsplit("/", 1)[1]
        ours = OmegaConf.load(REPO_ROOT / "configs/lavis" / family / name).run
        run = OmegaConf.create(tree.files[relative]).run
        assert run.batch_size_train * PROCESSES == ours.batch_size_train, relative
        assert f"the paper's {ours.batch_size_train} in all" in tree.files[relative], relative


TRAIN = """
import json, sys, types
import torch
import lavis.common.optims  # noqa: F401  (train.py imports the schedules)
import lavis.runners.runner_base as runner_base
import lavis.tasks as tasks
from lavis.common.config import Config
from lavis.common.registry import registry
from lavis.runners import RunnerBase
from omegaconf import OmegaConf

# LAVIS 1.0.2's loaders open a CUDA stream (PrefetchLoader): on a CPU machine, none
runner_base.PrefetchLoader = lambda loader: loader

recipe, options, teacher_cfg, teacher_state, clip_file, out = sys.argv[1:7]
# a tiny X-CLIP-style teacher, saved as a runner checkpoint, teaches the student
teacher_model = OmegaConf.load(teacher_cfg).model
torch.manual_seed(0)
teacher = registry.get_model_class(teacher_model.arch).from_config(teacher_model)
torch.save({"model": teacher.state_dict()}, teacher_state)

cfg = Config(types.SimpleNamespace(cfg_path=recipe, options=json.loads(options)))
task = tasks.setup_task(cfg)
datasets = task.build_datasets(cfg)
model = task.build_model(cfg)
assert set(model.teachers) == {"xclip"}
runner = RunnerBase(cfg=cfg, job_id="check", task=task, model=model, datasets=datasets)
runner._wrapped_model = model  # its model property returns None for a model on its device
# the CLIP the student starts from, as an OpenAI-format file (its frozen layers stay so)
torch.save(model.clip.state_dict(), clip_file)
before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
stats = runner.train_epoch(0)
after = dict(model.named_parameters())
changed = sorted(n for n in before if not torch.equal(before[n], after[n]))
groups = {g["name"]: g["lr"] for g in runner.optimizer.param_groups}
metrics = runner.eval_epoch("test", cur_epoch=0, skip_reload=True)
# RunnerBase's checkpoint (trainable parameters only) loads as the eval recipe loads it
runner._save_checkpoint(0, is_best=True)
reload_cfg = OmegaConf.merge(cfg.model_cfg, {"pretrained": clip_file, "load_finetuned": True,
                             "finetuned": str(runner.output_dir / "checkpoint_best.pth")})
reloaded = registry.get_model_class(reload_cfg.arch).from_config(reload_cfg).state_dict()
trained = model.state_dict()
same = all(torch.equal(reloaded[k], v) for k, v in trained.items() if not k.startswith("teachers."))
json.dump({"stats": stats, "groups": groups, "changed": changed, "metrics": metrics,
           "steps": len(runner.train_loader), "reloaded": same}, open(out, "w"))
"""


def _dotlist(prefix: str, value) -> list[str]:
    if isinstance(value, dict):
        return [item for k, v in value.items() for item in _dotlist(f"{prefix}.{k}", v)]
    return [f"{prefix}={value}"]


def test_teachclip_trains_one_step_and_evaluates_with_lavis_runner_base(exported, tmp_path):
    host, _ = exported
    data = tmp_path / "data"
    write_video_text_dataset(data, {"train": 1, "val": 1, "test": 1}, seed=3, num_frames=8)
    teacher_cfg = tmp_path / "xclip.yaml"
    OmegaConf.save({"model": tiny_model_cfg("seqTransf", arch="xclip_retrieval")}, teacher_cfg)
    dataset = "datasets.msrvtt_text_video"
    options = [
        *_dotlist("model.clip_config", TINY_CLIP),
        "model.clip_config.text_cfg.heads=1",  # OpenAI's layout: heads = width / 64
        "model.max_txt_len=16",
        "model.max_frames=8",
        "model.temporal_layers=1",
        "model.teachers.xpool=null",
        f"model.teachers.xclip.cfg_path={teacher_cfg}",
        f"model.teachers.xclip.checkpoint={tmp_path / 'xclip.pth'}",
        *(f"{dataset}.vis_processor.{s}.n_frms=8" for s in ("train", "eval")),
        *(f"{dataset}.vis_processor.{s}.image_size=32" for s in ("train", "eval")),
        *(
            f"{dataset}.build_info.annotations.{split}.storage={data}/annotations/{split}.json"
            for split in ("train", "val", "test")
        ),
        f"{dataset}.build_info.videos.storage={data}/videos",
        "run.device=cpu",
        "run.distributed=false",
        "run.use_dist_eval_sampler=false",
        "run.batch_size_train=4",  # every training caption of the split: one step
        "run.batch_size_eval=2",
        "run.num_workers=0",
        "run.max_epoch=1",
        "run.warmup_steps=0",
        f"run.output_dir={tmp_path / 'output'}",
    ]
    out = tmp_path / "result.json"
    run_exported_script(
        host,
        "run_teachclip.py",
        TRAIN,
        "lavis/projects/teachclip/train/teachclip_msrvtt-9k.yaml",
        json.dumps(options),
        teacher_cfg,
        tmp_path / "xclip.pth",
        tmp_path / "clip.pt",
        out,
    )
    result = json.loads(out.read_text())
    assert result["steps"] == 1 and float(result["stats"]["loss"]) > 0
    assert any(n.startswith("afa.") for n in result["changed"])
    assert not any(n.startswith("teachers.") for n in result["changed"])
    groups = result["groups"]  # the model's groups, each at the schedule's rate x lr_scale
    assert groups["clip/decay"] == pytest.approx(groups["new/decay"] * 1e-3)
    assert groups["afa/decay"] == pytest.approx(groups["new/decay"] * 10)
    metrics = result["metrics"]
    assert {"t2v_r1", "v2t_r1", "t2v_medr", "agg_metrics"} <= set(metrics)
    assert (tmp_path / "output" / "check" / "evaluate.txt").is_file()
    assert result["reloaded"]  # frozen layers from model.pretrained, the rest from the file


EQUIVALENCE = """
import json, sys
import torch
from lavis.common.registry import registry
from omegaconf import OmegaConf

configs, samples_path, folder = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
samples = torch.load(samples_path, weights_only=True)
for name, cfg in configs.items():
    cfg = OmegaConf.create(cfg)
    torch.manual_seed(0)
    model = registry.get_model_class(cfg.arch).from_config(cfg).eval()
    torch.save(model.state_dict(), f"{folder}/{name}_exported.pt")
    outputs = {}
    for weights in ("exported", "plugzoo"):
        if weights == "plugzoo":
            state = torch.load(f"{folder}/{name}_plugzoo.pt", weights_only=True)
            model.load_state_dict(state)  # strict: the same parameter names
        with torch.no_grad():
            out = model(samples)
            video = model.extract_video_features(samples["video"], samples["video_mask"])
            outputs[weights] = {"loss": out.loss, "logits": out.logits, "video": video,
                                "text": model.extract_text_features(samples["text_input"])}
            if hasattr(model, "teach"):
                taught = model.teach(samples)
                outputs[weights].update(teach_logits=taught.logits,
                                        relevance=taught.frame_relevance)
    torch.save(outputs, f"{folder}/{name}_outputs.pt")
print("ok")
"""


def _outputs(model, samples) -> dict:
    with torch.no_grad():
        out = model(samples)
        outputs = {
            "loss": out.loss,
            "logits": out.logits,
            "video": model.extract_video_features(samples["video"], samples["video_mask"]),
            "text": model.extract_text_features(samples["text_input"]),
        }
        if hasattr(model, "teach"):
            taught = model.teach(samples)
            outputs.update(teach_logits=taught.logits, relevance=taught.frame_relevance)
    return outputs


def test_exported_and_plugzoo_models_are_the_same_model(exported, tmp_path):
    """A state dict of either loads into the other, and with the same weights both give
    the same losses, logits, stored video vectors, text vectors and teacher outputs."""
    host, _ = exported
    torch.manual_seed(5)
    samples = {
        "video": torch.randn(3, 8, 3, 32, 32),
        "video_mask": torch.tensor([[1] * 8, [1] * 5 + [0] * 3, [1] * 8]),
        "text_input": ["a red square moves left", "a blue bar moves up", "a white circle"],
    }
    samples_file = tmp_path / "samples.pt"
    torch.save(samples, samples_file)
    configs, plugzoo = {}, {}
    for name, (arch, model_type, extra) in MODELS.items():
        cfg = tiny_model_cfg(model_type, arch=arch, **extra)
        configs[name] = OmegaConf.to_container(cfg)
        torch.manual_seed(1)  # other weights than the exported side's
        plugzoo[name] = registry.get_model_class(arch).from_config(cfg).eval()
        torch.save(plugzoo[name].state_dict(), tmp_path / f"{name}_plugzoo.pt")
    run_exported_script(
        host, "equivalence.py", EQUIVALENCE, json.dumps(configs), samples_file, tmp_path
    )
    for name, model in plugzoo.items():
        theirs = torch.load(tmp_path / f"{name}_outputs.pt", weights_only=True)
        for weights in ("plugzoo", "exported"):
            if weights == "exported":  # strict: the same parameter names
                model.load_state_dict(torch.load(tmp_path / f"{name}_exported.pt"))
            ours = _outputs(model, samples)
            assert set(ours) == set(theirs[weights]), name
            for key, value in ours.items():
                assert torch.allclose(value, theirs[weights][key], atol=1e-6), (name, weights, key)
        # the two sides' weights differ, so the comparison is not of two default inits
        assert not torch.equal(theirs["plugzoo"]["loss"], theirs["exported"]["loss"]), name
