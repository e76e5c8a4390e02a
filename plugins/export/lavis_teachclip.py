"""CLIP4Clip and TeachCLIP -> LAVIS 1.0.2, as two model families.

Decision (written down here and in docs/upstreaming.md): two families, not one.
``clip4clip_models`` holds the base every model here builds on (CLIP4Clip, the batch gather,
the checkpoint reader) and is a pull request of its own, together with what any text-video
model needs in LAVIS (the ``text_video_retrieval`` task, the ``clip4clip_video_*``
processors, the local text-video datasets and builders, a group-scaled learning-rate
schedule). ``teachclip_models`` holds the student and the two teachers it is trained with
(X-CLIP-style and X-Pool-style, subclasses of CLIP4Clip); it imports the base and cannot go
upstream before it. One family would make LAVIS take TeachCLIP's teachers to get
CLIP4Clip.

``export_teachclip`` writes both families when the host source lacks the base, and only
TeachCLIP's files when it has them (a tree the ``clip4clip`` export was applied to): the
base PR first, TeachCLIP's on top. ``export_clip4clip`` writes the base alone.

What changes on the way (plugzoo glue only; the model code is the same): the default-config
tables take LAVIS's relative form and plugzoo's overrides of LAVIS's lookups
(``default_config_path``, the builders' processor lookup) go, so LAVIS's own run; the task
derives from LAVIS's ``RetrievalTask``; the weights-only checkpoint reader the models use is
exported as ``clip4clip_models/checkpoint.py``. LAVIS 1.0.2's ``RunnerBase`` builds its own
two parameter groups; LAVIS's main branch asks the model (``get_optimizer_params``), and the
export backports that change into a host source that lacks it, so the models' per-group
learning rates reach the optimiser; ``linear_warmup_cosine_group_lr`` (appended to
``lavis/common/optims.py``) multiplies each group's ``lr_scale``.
"""

from __future__ import annotations

import ast
from pathlib import Path

from omegaconf import OmegaConf

from plugins.export.core import (
    ExportRefused,
    ExportTree,
    PythonRules,
    class_source,
    insert_after_last,
    rewrite_python,
    text_mentions,
)
from plugins.export.lavis import (
    COPYRIGHT,
    ConfigRules,
    LavisLayout,
    convert_config,
    drop_unused_imports,
    host_text,
    python_header,
    register_import,
    rewrite_model_file,
    set_model_configs,
)
from plugins.paths import REPO_ROOT

CLIP4CLIP = LavisLayout("clip4clip")
TEACHCLIP = LavisLayout("teachclip")
CLIP4CLIP_PROVENANCE = (
    "written for plugzoo from the paper arXiv 2104.08860; where the paper is silent, "
    "behaviour matched to the authors' released code, from which no code is copied"
)
TEACHCLIP_PROVENANCE = (
    "written for plugzoo from the paper arXiv 2308.01217; where the paper is silent, "
    "behaviour matched to the authors' released code, from which no code is copied"
)
PROVENANCES = (CLIP4CLIP_PROVENANCE, TEACHCLIP_PROVENANCE)
# the base's files: the model is found by this one
BASE_MARKER = f"{CLIP4CLIP.models}/clip4clip_retrieval.py"

TASK = "lavis/tasks/text_video_retrieval.py"
PROCESSORS = "lavis/processors/clip4clip_processors.py"
DATASETS = "lavis/datasets/datasets/video_text_retrieval_datasets.py"
BUILDERS = "lavis/datasets/builders/text_video_retrieval_builder.py"
CHECKPOINT = f"{CLIP4CLIP.models}/checkpoint.py"
OPTIMS = "lavis/common/optims.py"
RUNNER = "lavis/runners/runner_base.py"
BASE_MODEL = "lavis/models/base_model.py"


def _module(path: str) -> str:
    return path[: -len(".py")].replace("/", ".")


# plugzoo file -> (LAVIS file, provenance)
BASE_SOURCES = {
    "retrieval_ext/models/clip4clip.py": f"{CLIP4CLIP.models}/clip4clip_retrieval.py",
    "retrieval_ext/models/common.py": f"{CLIP4CLIP.models}/common.py",
    "retrieval_ext/processors/video.py": PROCESSORS,
    "retrieval_ext/datasets/video_text.py": DATASETS,
    "retrieval_ext/datasets/builders.py": BUILDERS,
    "retrieval_ext/tasks/text_video_retrieval.py": TASK,
}
TEACHCLIP_SOURCES = {
    "retrieval_ext/models/teacher.py": f"{TEACHCLIP.models}/teacher.py",
    "retrieval_ext/models/xclip.py": f"{TEACHCLIP.models}/xclip_retrieval.py",
    "retrieval_ext/models/xpool.py": f"{TEACHCLIP.models}/xpool_retrieval.py",
    "retrieval_ext/models/teachclip.py": f"{TEACHCLIP.models}/teachclip_retrieval.py",
}
CHECKPOINT_SOURCE = "plugins/compat/checkpoints.py"
# what the models use of plugzoo's checkpoint reader (torch.load with weights_only=True and
# errors that name the file and the config key); exported as clip4clip_models/checkpoint.py
CHECKPOINT_NAMES = ("CheckpointLoadError", "UnsafeCheckpointError", "_unpickler_reason")
CHECKPOINT_NAMES += ("load_checkpoint",)
SCHEDULE_SOURCE = "retrieval_ext/runners/lr_schedule.py"
SCHEDULE_CLASS = "GroupScaledWarmupCosineLR"

# model class -> {model_type: default config file} in each family
MODEL_CONFIGS = {
    "retrieval_ext/models/clip4clip.py": {
        "CLIP4ClipRetrieval": {
            "meanP": CLIP4CLIP.config_entry("clip4clip_meanP.yaml"),
            "seqTransf": CLIP4CLIP.config_entry("clip4clip_seqTransf.yaml"),
        }
    },
    "retrieval_ext/models/teachclip.py": {
        "TeachCLIPRetrieval": {
            "seqTransf": TEACHCLIP.config_entry("teachclip_seqTransf.yaml"),
            "meanP": TEACHCLIP.config_entry("teachclip_meanP.yaml"),
        }
    },
    "retrieval_ext/models/xclip.py": {
        "XCLIPRetrieval": {
            "seqTransf": TEACHCLIP.config_entry("xclip_seqTransf.yaml"),
            "meanP": TEACHCLIP.config_entry("xclip_meanP.yaml"),
        }
    },
    "retrieval_ext/models/xpool.py": {
        "XPoolRetrieval": {"xpool": TEACHCLIP.config_entry("xpool.yaml")},
    },
}
# plugzoo's real-data builders (the generated-clip one stays: it reads plugzoo's synthetic
# data) and the LAVIS default config each gets
DATASET_CONFIGS = {
    "MSRVTTTextVideoBuilder": "msrvtt",
    "MSVDTextVideoBuilder": "msvd",
    "DiDeMoTextVideoBuilder": "didemo",
    "ActivityNetTextVideoBuilder": "activitynet",
    "VATEXTextVideoBuilder": "vatex",
}
LEFT_OUT_CLASSES = {"retrieval_ext/datasets/builders.py": ("EmbeddedTextVideoBuilder",)}
# plugzoo's overrides of LAVIS lookups: LAVIS's own methods do the same with its registry
DROPPED_METHODS = {
    "retrieval_ext/models/clip4clip.py": {"CLIP4ClipRetrieval": ("default_config_path",)},
    "retrieval_ext/datasets/builders.py": {
        "LocalRetrievalBuilder": ("default_config_path", "_build_proc_from_cfg")
    },
}


def dataset_config_entry(name: str) -> str:
    return f"configs/datasets/{name}/defaults_text_video.yaml"


MODULE_MAP = {
    **{_module(source): _module(target) for source, target in BASE_SOURCES.items()},
    **{_module(source): _module(target) for source, target in TEACHCLIP_SOURCES.items()},
    "plugins.compat.checkpoints": _module(CHECKPOINT),
}
RULES = PythonRules(
    module_map=MODULE_MAP,
    # the config-path helpers and the registry lookup: only the dropped methods used them
    glue=frozenset({"default_config_path", "lavis_lookup"}),
    helpers={"retrieval_ext.tasks.base.RegistryRetrievalTask": "RetrievalTask"},
    text_map={
        **{source: target for source, target in MODULE_MAP.items()},
        "retrieval_ext/datasets/video_text.py": DATASETS,
        "tools/data/lavis/convert_video_text_annotations.py": (
            f"the annotation format of {DATASETS};"
        ),
        "plugzoo never turns torch's weights_only check off": (
            "These loaders never turn torch's weights_only check off"
        ),
    },
)
# imports a rewritten file needs that its plugzoo source had through plugzoo
ADDED_IMPORTS = {TASK: "from lavis.tasks.retrieval import RetrievalTask\n"}

# ---- configs
MODEL_CONFIG_FILES = {
    CLIP4CLIP: ("clip4clip_meanP.yaml", "clip4clip_seqTransf.yaml"),
    TEACHCLIP: (
        "teachclip_meanP.yaml",
        "teachclip_seqTransf.yaml",
        "xclip_meanP.yaml",
        "xclip_seqTransf.yaml",
        "xpool.yaml",
    ),
}
# a local OpenAI-format ViT-B-32.pt (file or folder); "" builds random weights and says so
MODEL_CONFIG_RULES = ConfigRules(set={"model.pretrained": ""})
# plugzoo run keys LAVIS's RunnerBase does not read (its optimiser is AdamW without
# clipping; the schedule's warm-up is in steps)
PLUGZOO_RUN_KEYS = (
    "run.optimizer",
    "run.grad_clip_norm",
    "run.grad_clip_mode",
    "run.warmup_proportion",
)
LAVIS_RUN_NAMES = {
    "run.runner": {"runner_portable": "runner_base"},
    "run.lr_sched": {
        "warmup_cosine_progress_group_lr": "linear_warmup_cosine_group_lr",
        "linear_warmup_cosine_group_lr": "linear_warmup_cosine_group_lr",
    },
}
# LAVIS's RunnerBase counts warm-up in steps (plugzoo's recipes give 10% of all steps) and
# passes the schedule no epoch length: the warm-up runs inside the first epoch, from
# run.warmup_lr to init_lr, and the cosine takes one value per epoch. RunnerBase's default
# warmup_lr (-1) means "start at init_lr", which is no warm-up: every recipe sets 0.
WARMUP_STEPS = 1000
WARMUP_LR = 0
# the processes the paper pages' commands start; LAVIS's batch_size_train is per process, so
# each recipe holds the paper's batch (over all processes) divided by this
PROCESSES = 4
RECIPES = {
    CLIP4CLIP: (
        "msrvtt-9k_meanP.yaml",
        "msrvtt-9k_seqTransf.yaml",
        "msvd_seqTransf.yaml",
        "didemo_seqTransf.yaml",
    ),
    TEACHCLIP: tuple(
        f"{model}_{data}.yaml"
        for model in ("xclip", "xpool", "teachclip")
        for data in ("msrvtt-9k", "msvd", "didemo", "vatex")
    ),
}
# one evaluation recipe per family: the model's fine-tuned checkpoint on MSR-VTT 1k-A
EVAL_RECIPES = {CLIP4CLIP: "msrvtt-9k_seqTransf.yaml", TEACHCLIP: "teachclip_msrvtt-9k.yaml"}

REGISTRATIONS = {
    # LAVIS __init__ -> [(module, names)]
    "base": {
        "lavis/models/__init__.py": [
            (CLIP4CLIP.model_module("clip4clip_retrieval"), ["CLIP4ClipRetrieval"])
        ],
        "lavis/tasks/__init__.py": [(_module(TASK), ["TextVideoRetrievalTask"])],
        "lavis/processors/__init__.py": [
            (_module(PROCESSORS), ["ClipVideoTrainProcessor", "ClipVideoEvalProcessor"])
        ],
        "lavis/datasets/builders/__init__.py": [(_module(BUILDERS), list(DATASET_CONFIGS))],
    },
    "teachclip": {
        "lavis/models/__init__.py": [
            (TEACHCLIP.model_module("xclip_retrieval"), ["XCLIPRetrieval"]),
            (TEACHCLIP.model_module("xpool_retrieval"), ["XPoolRetrieval"]),
            (TEACHCLIP.model_module("teachclip_retrieval"), ["TeachCLIPRetrieval"]),
        ],
    },
}

# LAVIS main (2023-07, "finetune BLIP-2 for coco retrieval") asks the model for its
# parameter groups; 1.0.2 builds two groups itself. Backported when the host lacks it.
BASE_MODEL_GROUPS = """
    def get_optimizer_params(self, weight_decay, lr_scale=1):
        p_wd, p_non_wd = [], []
        for n, p in self.named_parameters():
            if not p.requires_grad:
                continue  # frozen weights
            if p.ndim < 2 or "bias" in n or "ln" in n or "bn" in n:
                p_non_wd.append(p)
            else:
                p_wd.append(p)
        optim_params = [
            {"params": p_wd, "weight_decay": weight_decay, "lr_scale": lr_scale},
            {"params": p_non_wd, "weight_decay": 0, "lr_scale": lr_scale},
        ]
        return optim_params
"""
RUNNER_OPTIMIZER = """    @property
    def optimizer(self):
        # TODO make optimizer class and configurations
        if self._optimizer is None:
            lr_scale = self.config.run_cfg.get("lr_layer_decay", 1)
            weight_decay = self.config.run_cfg.get("weight_decay", 0.05)
            optim_params = self._model.get_optimizer_params(weight_decay, lr_scale)

            num_parameters = 0
            for p_group in optim_params:
                for p in p_group["params"]:
                    num_parameters += p.data.nelement()
            logging.info("number of trainable parameters: {}".format(num_parameters))

            beta2 = self.config.run_cfg.get("beta2", 0.999)

            self._optimizer = torch.optim.AdamW(
                optim_params,
                lr=float(self.config.run_cfg.init_lr),
                betas=(0.9, beta2),
            )
        return self._optimizer
"""


def _read(repo: Path, relative: str) -> str:
    return (repo / relative).read_text(encoding="utf-8")


def _without_classes(text: str, names) -> str:
    """``text`` without the top-level classes ``names`` (with their decorators)."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    spans = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in names:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            spans.append((first, node.end_lineno))
    missing = set(names) - {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    if missing:
        raise KeyError(f"no class(es) {sorted(missing)} to leave out")
    for first, last in sorted(spans, reverse=True):
        del lines[first - 1 : last]
        while first - 2 >= 0 and first - 1 < len(lines) and not lines[first - 2].strip():
            if lines[first - 1].strip():
                break
            del lines[first - 1]
    return "".join(lines)


def _without_methods(text: str, path: str, methods: dict[str, tuple[str, ...]]) -> str:
    """``text`` without the methods ``{class: names}`` (plugzoo overrides of LAVIS's)."""
    tree = ast.parse(text)
    edits = []
    for class_name, names in methods.items():
        node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == class_name)
        found = []
        for item in node.body:
            if isinstance(item, ast.FunctionDef) and item.name in names:
                first = min([item.lineno] + [d.lineno for d in item.decorator_list])
                edits.append((first, item.end_lineno))
                found.append(item.name)
        if sorted(found) != sorted(names):
            raise ExportRefused(
                path, [f"{path}: {class_name} lacks {sorted(set(names) - set(found))}"]
            )
    lines = text.splitlines(keepends=True)
    for first, last in sorted(edits, reverse=True):
        del lines[first - 1 : last]
        if first - 1 < len(lines) and not lines[first - 1].strip():
            del lines[first - 1]  # the blank line that separated it
    return "".join(lines)


def _dataset_tables(text: str) -> str:
    """The builders' ``DATASET_CONFIG_DICT`` tables in LAVIS's relative form."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    edits = []
    for node in tree.body:
        if not isinstance(node, ast.ClassDef) or node.name not in DATASET_CONFIGS:
            continue
        for item in node.body:
            if isinstance(item, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "DATASET_CONFIG_DICT" for t in item.targets
            ):
                indent = " " * item.col_offset
                entry = dataset_config_entry(DATASET_CONFIGS[node.name])
                edits.append(
                    (
                        item.lineno,
                        item.end_lineno,
                        f'{indent}DATASET_CONFIG_DICT = {{"default": "{entry}"}}\n',
                    )
                )
    if len(edits) != len(DATASET_CONFIGS):
        raise ValueError(f"expected a DATASET_CONFIG_DICT in each of {sorted(DATASET_CONFIGS)}")
    for first, last, new in sorted(edits, reverse=True):
        lines[first - 1 : last] = [new]
    return "".join(lines)


def python_file(source: str, target: str, repo: Path = REPO_ROOT) -> str:
    """The plugzoo file ``source`` as the LAVIS file ``target`` (unformatted)."""
    text = _read(repo, source)
    provenance = TEACHCLIP_PROVENANCE if source in TEACHCLIP_SOURCES else CLIP4CLIP_PROVENANCE
    if source in LEFT_OUT_CLASSES:
        text = _without_classes(text, LEFT_OUT_CLASSES[source])
    if source in DROPPED_METHODS:
        text = _without_methods(text, source, DROPPED_METHODS[source])
    if source == "retrieval_ext/datasets/builders.py":
        text = _dataset_tables(text)
    configs = MODEL_CONFIGS.get(source)
    if configs:
        text = set_model_configs(text, source, configs)
    rewritten = rewrite_model_file(text, source, RULES, provenance)
    if target in ADDED_IMPORTS:
        rewritten = insert_after_last(
            rewritten, lambda line: line.startswith("from lavis."), ADDED_IMPORTS[target]
        )
    return rewritten


def checkpoint_file(repo: Path = REPO_ROOT) -> str:
    """``clip4clip_models/checkpoint.py``: the part of plugzoo's checkpoint reader the
    models use (the rest serves other hosts)."""
    text = _read(repo, CHECKPOINT_SOURCE)
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    pieces = []
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef) and node.name in CHECKPOINT_NAMES:
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            pieces.append("".join(lines[first - 1 : node.end_lineno]))
    if len(pieces) != len(CHECKPOINT_NAMES):
        raise ExportRefused(
            CHECKPOINT_SOURCE, [f"expected {CHECKPOINT_NAMES} in {CHECKPOINT_SOURCE}"]
        )
    module = (
        '"""Checkpoint files read with ``torch.load(weights_only=True)`` (torch >= 1.13): a file\n'
        "refused as unsafe, or one that cannot be read, stops with an error naming the file and\n"
        'the config key that gave it."""\n\n'
        "from __future__ import annotations\n\n"
        "import os\nimport pickle\nfrom pathlib import Path\n\nimport torch\n\n\n"
        + "\n\n".join(pieces)
    )
    rewritten = rewrite_python(module, CHECKPOINT_SOURCE, RULES)
    return python_header(drop_unused_imports(module, rewritten), CLIP4CLIP_PROVENANCE)


def optims_file(host_src: Path, repo: Path = REPO_ROOT) -> str:
    """``lavis/common/optims.py`` with the group-scaled schedule appended."""
    host = host_text(host_src, OPTIMS)
    schedule = rewrite_python(_read(repo, SCHEDULE_SOURCE), SCHEDULE_SOURCE, RULES)
    block = class_source(schedule, SCHEDULE_CLASS)
    decorator = '@registry.register_lr_scheduler("linear_warmup_cosine_group_lr")\n'
    if "import math" not in host or "from lavis.common.registry import registry" not in host:
        raise ExportRefused(OPTIMS, [f"{OPTIMS}: expected 'import math' and the registry import"])
    return (
        host.rstrip("\n")
        + "\n\n\n# The group-scaled schedule of CLIP4Clip-based models,\n"
        + f"# {CLIP4CLIP_PROVENANCE}\n"
        + decorator
        + block
    )


def runner_backport(host_src: Path) -> dict[str, str]:
    """``RunnerBase.optimizer`` and ``BaseModel.get_optimizer_params`` as LAVIS's main
    branch has them, for a host source (1.0.2) whose runner builds its own groups; ``{}``
    when the host already asks the model."""
    runner = host_text(host_src, RUNNER)
    if "get_optimizer_params" in runner:
        return {}
    tree = ast.parse(runner)
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "RunnerBase")
    prop = next(i for i in cls.body if isinstance(i, ast.FunctionDef) and i.name == "optimizer")
    first = min([prop.lineno] + [d.lineno for d in prop.decorator_list])
    lines = runner.splitlines(keepends=True)
    lines[first - 1 : prop.end_lineno] = [RUNNER_OPTIMIZER]
    base = host_text(host_src, BASE_MODEL)
    base_tree = ast.parse(base)
    model = next(n for n in base_tree.body if isinstance(n, ast.ClassDef) and n.name == "BaseModel")
    anchor = next(
        (i for i in model.body if isinstance(i, ast.FunctionDef) and i.name == "before_evaluation"),
        None,
    )
    if anchor is None:
        raise ExportRefused(BASE_MODEL, [f"{BASE_MODEL}: BaseModel.before_evaluation not found"])
    base_lines = base.splitlines(keepends=True)
    base_lines[anchor.lineno - 1 : anchor.lineno - 1] = [BASE_MODEL_GROUPS.lstrip("\n"), "\n"]
    return {RUNNER: "".join(lines), BASE_MODEL: "".join(base_lines)}


def _registrations(host_src: Path, which: tuple[str, ...], tree: ExportTree) -> None:
    for key in which:
        for relative, imports in REGISTRATIONS[key].items():
            text = tree.files.get(relative) or host_text(host_src, relative)
            for module, names in imports:
                text = register_import(text, relative, module, names)
            tree.files[relative] = text


def _model_configs(layout: LavisLayout, repo: Path, tree: ExportTree, provenance: str) -> None:
    for name in MODEL_CONFIG_FILES[layout]:
        relative = f"{layout.model_configs}/{name}"
        tree.files[relative] = convert_config(
            repo / "retrieval_ext/configs/models" / name, MODEL_CONFIG_RULES, provenance, relative
        )


def _dataset_configs(repo: Path, tree: ExportTree) -> None:
    for name in DATASET_CONFIGS.values():
        relative = f"lavis/{dataset_config_entry(name)}"
        tree.files[relative] = convert_config(
            repo / "retrieval_ext/configs/datasets" / f"{name}.yaml",
            ConfigRules(),
            CLIP4CLIP_PROVENANCE,
            relative,
        )


def recipe_rules(
    layout: LavisLayout, name: str, evaluate: bool, batch_per_process: int
) -> ConfigRules:
    """plugzoo's run config ``name`` as a LAVIS recipe: RunnerBase (AdamW), the
    group-scaled schedule with its warm-up in steps from ``WARMUP_LR``, the per-process
    batch ``batch_per_process``, LAVIS's output folder (relative to the ``lavis``
    package), teachers read from the exported recipes."""
    stem = name[: -len(".yaml")]
    values = dict(LAVIS_RUN_NAMES)
    teachers = [recipe[: -len(".yaml")] for recipe in RECIPES[TEACHCLIP]]
    values["model.teachers.*.cfg_path"] = {
        f"configs/lavis/teachclip/{stem}.yaml": TEACHCLIP.recipe("train", f"{stem}.yaml")
        for stem in teachers
    }
    # a teacher's best checkpoint where LAVIS's train.py leaves it (plugzoo runs the
    # teachers with job id "teacher")
    values["model.teachers.*.checkpoint"] = {
        f"runs/lavis/{stem}/teacher/checkpoint_best.pth": run_checkpoint(TEACHCLIP, stem)
        for stem in teachers
    }
    settings = {
        "run.output_dir": f"output/{layout.family}/{stem}",
        "run.warmup_steps": WARMUP_STEPS,
        "run.warmup_lr": WARMUP_LR,
        "run.batch_size_train": batch_per_process,
        "run.evaluate": evaluate,
        "model.pretrained": "",
    }
    if evaluate:
        settings["model.load_finetuned"] = True
        settings["model.finetuned"] = run_checkpoint(layout, stem)
    drop = (*PLUGZOO_RUN_KEYS, *(("run.train_splits",) if evaluate else ()))
    return ConfigRules(drop=drop, values=values, set=settings, forbidden=("runs/",))


def run_checkpoint(layout: LavisLayout, stem: str) -> str:
    """Where LAVIS's ``train.py`` (run from the repository root) leaves the best checkpoint
    of the recipe ``stem``: ``lavis/<output_dir>/<job_id>/``, the job id a time stamp."""
    return f"lavis/output/{layout.family}/{stem}/<job_id>/checkpoint_best.pth"


def paper_batch(source: Path) -> int:
    """The batch over all processes that plugzoo's recipe ``source`` trains with
    (``run.batch_size_train``: one process), checked to split over ``PROCESSES``."""
    batch = OmegaConf.load(source).get("run", {}).get("batch_size_train")
    if not isinstance(batch, int) or batch % PROCESSES:
        raise ValueError(
            f"{source}: run.batch_size_train must be an integer multiple of {PROCESSES} (the "
            f"exported recipe runs it over {PROCESSES} processes), got {batch!r}"
        )
    return batch


def _annotated(text: str, relative: str, batch: int) -> str:
    """The recipe ``text`` with the lines a reader must not misread explained."""
    notes = {
        f"  batch_size_train: {batch // PROCESSES}\n": (
            f"  # per process: {PROCESSES} processes x {batch // PROCESSES} = the paper's "
            f"{batch} in all; with N processes set {batch} / N\n"
        ),
        f"  warmup_steps: {WARMUP_STEPS}\n": (
            "  # inside the first epoch only: RunnerBase gives the schedule no epoch length, so "
            "the\n  # cosine takes one value per epoch; keep it at most one epoch's steps\n"
        ),
    }
    for line, note in notes.items():
        if text.count(line) != 1:
            raise ExportRefused(relative, [f"{relative}: expected one line {line.strip()!r}"])
        text = text.replace(line, note + line)
    return text


def _recipes(layout: LavisLayout, repo: Path, tree: ExportTree, provenance: str) -> None:
    folder = repo / "configs/lavis" / layout.family
    names = [("train", name) for name in RECIPES[layout]] + [("eval", EVAL_RECIPES[layout])]
    for kind, name in names:
        relative = layout.recipe(kind, name)
        batch = paper_batch(folder / name)
        rules = recipe_rules(layout, name, kind == "eval", batch // PROCESSES)
        text = convert_config(folder / name, rules, provenance, relative)
        tree.files[relative] = _annotated(text, relative, batch)


# ---- the paper pages
CLIP4CLIP_TITLE = "CLIP4Clip: An Empirical Study of CLIP for End to End Video Clip Retrieval"
TEACHCLIP_TITLE = "TeachCLIP: Multi-Grained Teaching for Efficient Text-to-Video Retrieval"
RUNNER_NOTES = [
    "Training runs with LAVIS's `RunnerBase` and `train.py`. What differs from the papers' "
    "recipes there: the optimiser is LAVIS's AdamW (the papers use BertAdam, without bias "
    "correction) with no gradient clipping (the papers clip the global norm at 1), and the "
    "schedule. `RunnerBase` gives the schedule no epoch length, so the cosine takes one "
    "value per epoch (as LAVIS's `linear_warmup_cosine_lr`; the papers decay it every "
    f"step), and the warm-up, linear from `run.warmup_lr` ({WARMUP_LR}) to `init_lr` over "
    f"`run.warmup_steps` ({WARMUP_STEPS}; the papers warm up over 10% of all steps), runs "
    "inside the first epoch only: where an epoch has fewer steps (training captions / "
    "(processes x `batch_size_train`); DiDeMo's one paragraph per video gives few), the "
    "warm-up is cut at the epoch's end, so set `run.warmup_steps` to at most one epoch's "
    "steps. `batch_size_train` is LAVIS's batch per process: each recipe holds the paper's "
    f"batch divided by the {PROCESSES} processes of the commands above; with N processes "
    "set it to the paper's batch / N (the comment above it in each recipe gives the "
    "numbers). The per-group learning rates (CLIP's weights at `lr_scale_clip` times the "
    "new layers' rate) need `run.lr_sched: linear_warmup_cosine_group_lr`, which these "
    "recipes set, and a runner that takes the model's parameter groups "
    "(`get_optimizer_params`, as LAVIS's main branch does). The bound on the learned logit "
    "scale is applied by the model before each use and before each `state_dict()`, so it "
    "needs no runner hook and no checkpoint holds a value above it. `RunnerBase` saves "
    "trainable parameters only: to load such a checkpoint (an eval recipe, a teacher), "
    "`model.pretrained` must name the CLIP file the run started from, which gives the "
    "frozen layers.",
]
# what the commands pass: the recipes' model.pretrained is empty (random CLIP weights)
CLIP_FILE = "/path/to/ViT-B-32.pt"

DATA_NOTES = [
    "Each dataset is a folder of videos and JSON annotation files: a list of "
    '`{"video": <path relative to the video folder>, "caption": <string or list of '
    'strings>}` entries (optional `"video_id"`). Set the paths in '
    "`lavis/configs/datasets/<name>/defaults_text_video.yaml` "
    "(`build_info.annotations.<split>.storage`, `build_info.videos.storage`); nothing is "
    "downloaded. Videos are decoded with decord, or with PyAV "
    "(`vis_processor.*.backend: pyav`).",
]


def clip4clip_readme() -> str:
    recipe = CLIP4CLIP.recipe("train", "msrvtt-9k_seqTransf.yaml")
    evaluate = CLIP4CLIP.recipe("eval", EVAL_RECIPES[CLIP4CLIP])
    lines = [
        "# CLIP4Clip: text-video retrieval on CLIP",
        "",
        f"> [{CLIP4CLIP_TITLE}](https://arxiv.org/abs/2104.08860)",
        "",
        "CLIP's image encoder embeds each sampled frame, a temporal head pools the frames "
        "into one video vector (`meanP`: the mean; `seqTransf`: a small transformer over "
        "the frames, then the mean), CLIP's text encoder embeds the caption, and the score "
        "is their cosine. Training is CLIP's symmetric InfoNCE over the batch, gathered "
        "across processes.",
        "",
        f"Provenance: {CLIP4CLIP_PROVENANCE}.",
        "",
        "This adds to LAVIS:",
        "",
        f"- `clip4clip_retrieval` (`{CLIP4CLIP.models}/`), types `meanP` and `seqTransf` "
        f"(`{CLIP4CLIP.model_configs}/`), on LAVIS's own CLIP;",
        "- the `text_video_retrieval` task (R@1/5/10/50, median and mean rank in both "
        "directions; checkpoints selected on text-to-video);",
        "- the `clip4clip_video_train` / `clip4clip_video_eval` processors (CLIP4Clip's "
        "frame sampling at 1 frame per second, or TSN-style segments);",
        "- local text-video datasets: `msrvtt_text_video`, `msvd_text_video`, "
        "`didemo_text_video`, `activitynet_text_video`, `vatex_text_video`;",
        "- the `linear_warmup_cosine_group_lr` schedule, which scales each parameter "
        "group's rate by its `lr_scale`.",
        "",
        "## Weights",
        "",
        "`model.pretrained` is a local OpenAI-format CLIP file (`ViT-B-32.pt`) or a folder "
        "holding `<clip_model_type>.pt`; empty, the model starts from random weights and "
        "logs it. No CLIP4Clip checkpoint is offered; official CLIP4Clip checkpoints "
        "(`pytorch_model.bin`) load through `model.finetuned`.",
        "",
        "## Data",
        "",
        *DATA_NOTES,
        "",
        "## Training and evaluation",
        "",
        "```bash",
        f"CLIP={CLIP_FILE}  # OpenAI's CLIP; without it the run starts from random weights",
        f"python -m torch.distributed.run --nproc_per_node={PROCESSES} train.py \\",
        f"    --cfg-path {recipe} --options model.pretrained=$CLIP",
        f"python -m torch.distributed.run --nproc_per_node={PROCESSES} evaluate.py \\",
        f"    --cfg-path {evaluate} --options model.pretrained=$CLIP",
        "```",
        "",
        *RUNNER_NOTES,
        "",
        "## Results",
        "",
        "None on MSR-VTT, MSVD or DiDeMo: these recipes were not run on the real data for this "
        "contribution. The code was checked by one training step and one evaluation on "
        "generated clips, and against a reference implementation for equal outputs.",
        "",
        "## Citation",
        "",
        "```bibtex",
        "@article{luo2021clip4clip,",
        f"  title   = {{{CLIP4CLIP_TITLE}}},",
        "  author  = {Luo, Huaishao and Ji, Lei and Zhong, Ming and Chen, Yang and Lei, Wen "
        "and Duan, Nan and Li, Tianrui},",
        "  journal = {arXiv preprint arXiv:2104.08860},",
        "  year    = {2021}",
        "}",
        "```",
    ]
    return "\n".join(lines) + "\n"


def teachclip_readme() -> str:
    teacher = TEACHCLIP.recipe("train", "xclip_msrvtt-9k.yaml")
    student = TEACHCLIP.recipe("train", "teachclip_msrvtt-9k.yaml")
    evaluate = TEACHCLIP.recipe("eval", EVAL_RECIPES[TEACHCLIP])
    lines = [
        "# TeachCLIP: multi-grained teaching for efficient text-to-video retrieval",
        "",
        f"> [{TEACHCLIP_TITLE}](https://arxiv.org/abs/2308.01217)",
        "",
        "A CLIP4Clip student keeps CLIP4Clip's retrieval cost (one stored vector per video, "
        "one dot product per pair) and learns from frozen fine-grained teachers. Its frames "
        "are pooled by Attentional frame-Feature Aggregation (AFA: a per-frame MLP score, "
        "softmax over the frames); the teachers' text-video logits teach the student's "
        "(coarse-grained), and their frame-text relevance teaches the AFA weights "
        "(fine-grained).",
        "",
        f"Provenance: {TEACHCLIP_PROVENANCE}. The official TeachCLIP repository carries no "
        "licence; no code was copied from it.",
        "",
        "It builds on `clip4clip_retrieval`, which must be in LAVIS first. This adds:",
        "",
        f"- `teachclip_retrieval` (`{TEACHCLIP.models}/`), types `seqTransf` and `meanP`;",
        "- two teachers, themselves retrieval models with a `teach` method: "
        "`xclip_retrieval` (X-CLIP-style cross-grained similarity, types `seqTransf` and "
        "`meanP`) and `xpool_retrieval` (X-Pool-style text-conditioned pooling);",
        f"- recipes in `lavis/projects/{TEACHCLIP.family}/`.",
        "",
        "## Training",
        "",
        "Each teacher is trained first with its own recipe; the student's recipe names the "
        "teachers' recipes (`model.teachers.<label>.cfg_path`) and their best checkpoints "
        "(`model.teachers.<label>.checkpoint`: replace `<job_id>` with the teacher run's "
        "folder).",
        "",
        "```bash",
        f"CLIP={CLIP_FILE}  # OpenAI's CLIP; without it the run starts from random weights",
        f"python -m torch.distributed.run --nproc_per_node={PROCESSES} train.py \\",
        f"    --cfg-path {teacher} --options model.pretrained=$CLIP",
        "# the teachers' checkpoints hold trainable parameters only: their frozen layers come",
        "# from the CLIP file, passed to each teacher's config",
        'TEACHERS="model.teachers.xclip.model_overrides.pretrained=$CLIP',
        '    model.teachers.xpool.model_overrides.pretrained=$CLIP"',
        f"python -m torch.distributed.run --nproc_per_node={PROCESSES} train.py \\",
        f"    --cfg-path {student} --options model.pretrained=$CLIP $TEACHERS",
        f"python -m torch.distributed.run --nproc_per_node={PROCESSES} evaluate.py \\",
        f"    --cfg-path {evaluate} --options model.pretrained=$CLIP $TEACHERS",
        "```",
        "",
        *RUNNER_NOTES,
        "",
        "The paper's second teacher is TS2-Net, which is not provided; the X-Pool-style "
        "teacher stands in for it.",
        "",
        "## Data and weights",
        "",
        *DATA_NOTES,
        "",
        "`model.pretrained` is a local OpenAI-format `ViT-B-32.pt`. No TeachCLIP checkpoint "
        "is offered.",
        "",
        "## Results",
        "",
        "None on the real benchmarks: these recipes were not run on MSR-VTT, MSVD, DiDeMo or "
        "VATEX for this contribution. The code was checked by one training step and one "
        "evaluation on generated clips, and against a reference implementation for equal "
        "outputs.",
        "",
        "## Citation",
        "",
        "```bibtex",
        "@inproceedings{tian2024teachclip,",
        f"  title     = {{{TEACHCLIP_TITLE}}},",
        "  author    = {Tian, Kaibin and Cheng, Ruixiang and Liu, Yanhua and Zhao, Xirong and "
        "Hu, Xiao and Xu, Jian and Wang, Zhitao and Dong, Jianfeng and Wu, Xin},",
        "  booktitle = {CVPR},",
        "  year      = {2024}",
        "}",
        "```",
    ]
    return "\n".join(lines) + "\n"


# ---- the exports
def _check(tree: ExportTree, paper: str) -> None:
    problems = [
        f"{relative}:{line}: {what}"
        for relative, text in sorted(tree.files.items())
        if not relative.endswith(".py")
        for line, what in text_mentions(text, allowed=(*PROVENANCES, COPYRIGHT))
    ]
    if problems:
        raise ExportRefused(paper, problems)


def _python(sources: dict[str, str], repo: Path, tree: ExportTree) -> list[str]:
    problems = []
    for source, target in sources.items():
        try:
            tree.files[target] = python_file(source, target, repo)
        except ExportRefused as refused:
            problems.extend(refused.problems)
    return problems


def _family_init(layout: LavisLayout, provenance: str, what: str) -> str:
    return python_header(f'"""{what}"""\n', provenance)


def _base(host_src: Path, repo: Path, tree: ExportTree) -> None:
    problems = _python(BASE_SOURCES, repo, tree)
    try:
        tree.files[CHECKPOINT] = checkpoint_file(repo)
        tree.files[OPTIMS] = optims_file(host_src, repo)
    except ExportRefused as refused:
        problems.extend(refused.problems)
    if problems:
        raise ExportRefused("clip4clip", problems)
    tree.files[f"{CLIP4CLIP.models}/__init__.py"] = _family_init(
        CLIP4CLIP,
        CLIP4CLIP_PROVENANCE,
        "CLIP4Clip: CLIP frame features pooled into a video vector.",
    )
    tree.files.update(runner_backport(host_src))
    _registrations(host_src, ("base",), tree)
    _model_configs(CLIP4CLIP, repo, tree, CLIP4CLIP_PROVENANCE)
    _dataset_configs(repo, tree)
    _recipes(CLIP4CLIP, repo, tree, CLIP4CLIP_PROVENANCE)
    tree.files[CLIP4CLIP.readme] = clip4clip_readme()


def _teachclip(host_src: Path, repo: Path, tree: ExportTree) -> None:
    problems = _python(TEACHCLIP_SOURCES, repo, tree)
    if problems:
        raise ExportRefused("teachclip", problems)
    tree.files[f"{TEACHCLIP.models}/__init__.py"] = _family_init(
        TEACHCLIP,
        TEACHCLIP_PROVENANCE,
        "TeachCLIP: a CLIP4Clip student taught by frozen X-CLIP- and X-Pool-style teachers.",
    )
    _registrations(host_src, ("teachclip",), tree)
    _model_configs(TEACHCLIP, repo, tree, TEACHCLIP_PROVENANCE)
    _recipes(TEACHCLIP, repo, tree, TEACHCLIP_PROVENANCE)
    tree.files[TEACHCLIP.readme] = teachclip_readme()


def _finish(tree: ExportTree, host_src: Path, formatted: bool) -> ExportTree:
    from plugins.export.recbole import format_python  # black at 88 columns, LAVIS's setting

    host_files = {relative for relative in tree.files if (host_src / relative).is_file()}

    _check(tree, tree.paper)
    files = dict(tree.files)
    if formatted:  # the new files only: LAVIS's own keep their formatting (black would
        # re-indent their licence docstrings), the lines added to them are black's style
        files.update(format_python({k: v for k, v in files.items() if k not in host_files}))
    return ExportTree(paper=tree.paper, host=tree.host, files=files, skipped=tree.skipped)


def has_base(host_src: Path) -> bool:
    """Whether ``host_src`` already holds the CLIP4Clip base (the ``clip4clip`` export)."""
    return (Path(host_src) / BASE_MARKER).is_file()


def export_clip4clip(host_src: Path, repo: Path = REPO_ROOT, formatted: bool = True) -> ExportTree:
    """The CLIP4Clip base (model, task, processors, datasets, schedule) against the LAVIS
    source ``host_src``.

    Raises:
        ExportRefused: something exported would still depend on plugzoo or Python > 3.7.
        FileNotFoundError: ``host_src`` is not a LAVIS source tree.
    """
    host_src = Path(host_src)
    host_text(host_src, "lavis/models/__init__.py")  # a LAVIS source tree, or say so
    tree = ExportTree(paper="clip4clip", host="lavis")
    _base(host_src, repo, tree)
    return _finish(tree, host_src, formatted)


def export_teachclip(host_src: Path, repo: Path = REPO_ROOT, formatted: bool = True) -> ExportTree:
    """TeachCLIP (student and teachers) against the LAVIS source ``host_src``, with the
    CLIP4Clip base unless ``host_src`` already has it (:func:`has_base`).

    Raises:
        ExportRefused: something exported would still depend on plugzoo or Python > 3.7.
        FileNotFoundError: ``host_src`` is not a LAVIS source tree.
    """
    host_src = Path(host_src)
    host_text(host_src, "lavis/models/__init__.py")  # a LAVIS source tree, or say so
    tree = ExportTree(paper="teachclip", host="lavis")
    if not has_base(host_src):
        _base(host_src, repo, tree)
    _teachclip(host_src, repo, tree)
    return _finish(tree, host_src, formatted)
