"""Every shipped STH/TSM/TSN config parses through MMAction2's Config and builds its model;
the recipes keep MMAction2's data settings (flip label maps) for apples-to-apples runs."""

from pathlib import Path

import pytest
from conftest import REPO_ROOT

CONFIG_ROOT = REPO_ROOT / "configs" / "mmaction"
CONFIGS = sorted(
    p
    for folder in ("sth", "baselines", "motion")
    for p in (CONFIG_ROOT / folder).glob("*.py")
    if not p.name.endswith("_base.py")
)


def _no_weights(cfg):
    """Drop local checkpoint paths (not on this machine) before building."""
    backbone = cfg.model.backbone
    if backbone.get("pretrained"):
        backbone.pretrained = None
        if backbone.type == "ResNetTSM":
            backbone.pretrained2d = False
    return cfg


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_parses_and_builds(path: Path):
    from mmaction.registry import MODELS
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    cfg = Config.fromfile(str(path))
    assert "mmaction_ext" in cfg.custom_imports["imports"]
    init_default_scope("mmaction")
    model = MODELS.build(_no_weights(cfg).model)
    assert model.cls_head.num_classes in (2, 8, 27, 51, 174)


def test_sth_recipes_keep_mmactions_flip_label_maps():
    from mmengine.config import Config

    def flip_map(name):
        cfg = Config.fromfile(str(CONFIG_ROOT / "sth" / name))
        flips = [t for t in cfg.train_pipeline if t["type"] == "Flip"]
        return flips[0].get("flip_label_map") if flips else None

    assert flip_map("sth_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py") == {
        86: 87,
        87: 86,
        93: 94,
        94: 93,
        166: 167,
        167: 166,
    }
    assert flip_map("sth_imagenet-pretrained-r50_8xb8-1x1x8-50e_sthv1-rgb.py") == {
        2: 4,
        4: 2,
        30: 41,
        41: 30,
        52: 66,
        66: 52,
    }
    assert flip_map("sth_imagenet-pretrained-r50_8xb16-1x1x8-50e_jester-rgb.py") is None


def test_16_frame_config_sets_segments_everywhere():
    from mmengine.config import Config

    cfg = Config.fromfile(
        str(CONFIG_ROOT / "sth" / "sth_imagenet-pretrained-r50_8xb16-1x1x16-50e_sthv2-rgb.py")
    )
    assert cfg.model.backbone.num_segments == 16 == cfg.model.cls_head.num_segments
    sample = next(t for t in cfg.train_pipeline if t["type"] == "SampleFrames")
    assert sample["num_clips"] == 16


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_sampled_frames_match_the_models_num_segments(path: Path):
    """STH's temporal taps (and TSM's shifts) assume num_segments frames per clip: a
    pipeline sampling another number would silently mix clips, so every config must agree."""
    from mmengine.config import Config

    cfg = Config.fromfile(str(path))
    segments = cfg.model.backbone.get("num_segments")
    if segments is None:  # TSN: frame-order-blind, no temporal taps
        return
    for split in ("train", "val", "test"):
        pipeline = cfg[f"{split}_dataloader"]["dataset"]["pipeline"]
        sample = next(t for t in pipeline if t["type"] == "SampleFrames")
        assert sample["num_clips"] * sample["clip_len"] == segments, (split, sample)
        if "num_segments" in cfg.model.cls_head:
            assert cfg.model.cls_head.num_segments == segments


# --- one data recipe per dataset ---------------------------------------------------------

BASE_ROOT = CONFIG_ROOT / "_base_"
LEAF_CONFIGS = sorted(
    p for p in CONFIG_ROOT.rglob("*.py") if "_base_" not in p.relative_to(CONFIG_ROOT).parts
)
# Top-level keys a leaf config may set besides `_base_`, and may differ between the
# configs of one dataset, with the reason.
MODEL_KEYS = {
    "model": "the model is what STH and its baselines compare",
    "load_from": "each model fine-tunes from its own Kinetics-400 checkpoint (HMDB-51)",
}
# _base_/models/ holds one file per model (its backbone, and TSN's head), named by the configs
# beside their dataset base; the variables of those files may differ between configs too.
MODEL_BASE_ROOT = BASE_ROOT / "models"
# The one config whose model is the MMAction2 recipe's own, inherited with its dataset base.
RECIPE_MODEL_CONFIGS = {"tsm_imagenet-pretrained-r50_8xb16-1x1x16-50e_sthv2-rgb.py"}
# Keys every compared config must hold, so that the comparison covers the data pipeline.
DATA_KEYS = (
    "train_dataloader",
    "val_dataloader",
    "test_dataloader",
    "train_pipeline",
    "val_evaluator",
    "test_evaluator",
    "train_cfg",
    "val_cfg",
    "test_cfg",
    "optim_wrapper",
    "param_scheduler",
)


def _declared_bases(path: Path) -> list[Path]:
    """The `_base_` files a leaf config names, resolved."""
    import ast

    tree = ast.parse(path.read_text())
    bases = [
        node.value
        for node in tree.body
        if isinstance(node, ast.Assign) and [t.id for t in node.targets] == ["_base_"]
    ]
    assert len(bases) == 1, f"{path.name}: expected one `_base_ = [...]`"
    names = ast.literal_eval(bases[0])
    assert isinstance(names, list), f"{path.name}: `_base_` is not a list: {names}"
    return [(path.parent / name).resolve() for name in names]


def _declared_base(path: Path) -> Path:
    """The one dataset base of _base_/ a leaf config names (its model base aside)."""
    bases = [b for b in _declared_bases(path) if b.parent != MODEL_BASE_ROOT.resolve()]
    assert len(bases) == 1, f"{path.name}: one dataset base, got {bases}"
    return bases[0]


def _model_base_keys() -> set[str]:
    """The variables the model bases define (each config holds those of its own)."""
    from mmengine.config import Config

    return {key for p in MODEL_BASE_ROOT.glob("*.py") for key in Config.fromfile(str(p))}


def _leaves_by_dataset() -> dict[str, list[Path]]:
    groups: dict[str, list[Path]] = {}
    for path in LEAF_CONFIGS:
        groups.setdefault(_declared_base(path).stem, []).append(path)
    return groups


def test_every_config_inherits_its_model_base_and_one_dataset_base_and_sets_only_its_model():
    """Each STH, TSM or TSN config names one file of _base_/models/ (its model) and one file
    of _base_/ (its dataset's data pipeline, evaluation, schedule and optimiser), and sets
    nothing but its model; only a config that keeps its MMAction2 recipe's model names no
    model base."""
    import ast

    assert LEAF_CONFIGS
    used_models = set()
    for path in LEAF_CONFIGS:
        bases = _declared_bases(path)
        assert _declared_base(path).parent == BASE_ROOT.resolve(), path.name
        models = [b for b in bases if b.parent == MODEL_BASE_ROOT.resolve()]
        expected = 0 if path.name in RECIPE_MODEL_CONFIGS else 1
        assert len(models) == expected and len(bases) == expected + 1, (path.name, bases)
        if models:
            assert bases[0] == models[0], f"{path.name}: the model base comes first"
        used_models.update(m.stem for m in models)
        names = {
            target.id
            for node in ast.parse(path.read_text()).body
            if isinstance(node, ast.Assign)
            for target in node.targets
        }
        assert names - {"_base_"} <= set(MODEL_KEYS), (path.name, names)
    groups = _leaves_by_dataset()
    assert set(groups) == {p.stem for p in BASE_ROOT.glob("*.py")}  # no unused base
    assert used_models == {p.stem for p in MODEL_BASE_ROOT.glob("*.py")}  # no unused model base
    for dataset, paths in groups.items():
        kinds = {p.name.split("_")[0] for p in paths}
        assert "sth" in kinds and len(paths) >= 2, (dataset, [p.name for p in paths])


@pytest.mark.parametrize("dataset", sorted(_leaves_by_dataset()))
def test_sth_and_its_baselines_share_the_data_recipe_of_their_dataset(dataset: str):
    """Loaded through mmengine's Config, the configs of one dataset are equal in every key
    but the model keys (MODEL_KEYS and the variables of the model bases): dataloaders,
    pipelines, evaluators, loops, optimiser and schedule are the same objects for STH and its
    TSM/TSN baselines."""
    from mmengine.config import Config

    paths = _leaves_by_dataset()[dataset]
    configs = {p.name: Config.fromfile(str(p)).to_dict() for p in paths}
    model_keys = set(MODEL_KEYS) | _model_base_keys()
    shared = {
        name: {k: v for k, v in cfg.items() if k not in model_keys} for name, cfg in configs.items()
    }
    (first, reference), *others = shared.items()
    for key in DATA_KEYS:
        assert key in reference, (first, key)
    for name, cfg in others:
        assert cfg.keys() == reference.keys(), (first, name)
        for key in reference:
            assert cfg[key] == reference[key], (first, name, key)
    # the model keys are the only ones allowed to differ, and the models do
    models = [cfg["model"] for cfg in configs.values()]
    assert all(m != models[0] for m in models[1:])
