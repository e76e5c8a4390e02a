"""The embedded temporal benchmark: STH beside MMAction2's TSM and TSN, trained here.

Used by ``tools/experiments/sth/sth_motion_benchmark.py`` and by ``plugzoo demo``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import mmaction_ext  # noqa: F401  (host fixes, STH registration)
from mmaction_ext.datasets import write_motion_dataset

from plugins.demo import check_size
from plugins.paths import CONFIG_DIR
from plugins.processes import run_side_by_side
from plugins.report import StageResult
from plugins.separation import flag, separation_notes

MOTION_CONFIGS = {
    "TSN-R18": CONFIG_DIR / "mmaction" / "motion" / "tsn_r18_motion-clips.py",
    "TSM-R18": CONFIG_DIR / "mmaction" / "motion" / "tsm_r18_motion-clips.py",
    "STH-R18 (r=1/4)": CONFIG_DIR / "mmaction" / "motion" / "sth_r18_motion-clips.py",
}
# clips per class and split, epochs, whether to validate and save a checkpoint after every
# epoch (False: after the last only; the test uses the last epoch's weights either way), and
# whether the three models train side by side (a process each), per demo size
SETTINGS = {
    "quick": {
        "clips": {"train": 4, "val": 2, "test": 2},
        "epochs": 1,
        "every_epoch": True,
        "side_by_side": True,
    },
    "default": {
        "clips": {"train": 16, "val": 2, "test": 8},
        "epochs": 10,
        "every_epoch": False,
        "side_by_side": True,
    },
    "full": {
        "clips": {"train": 32, "val": 8, "test": 8},
        "epochs": 12,
        "every_epoch": True,
        "side_by_side": False,
    },
}


def _point_at(cfg, data_root: Path) -> None:
    for split in ("train", "val", "test"):
        dataset = cfg[f"{split}_dataloader"]["dataset"]
        dataset["ann_file"] = str(data_root / f"{split}_list_videos.txt")
        dataset["data_prefix"] = dict(video=str(data_root / "videos"))


def model_flops(cfg, num_segments: int, size: int) -> tuple[float, float]:
    """(GFLOPs per clip, M params) of the config's backbone + head, by mmengine."""
    import torch
    from mmaction.registry import MODELS
    from mmengine.analysis import get_model_complexity_info
    from mmengine.registry import init_default_scope

    init_default_scope("mmaction")  # the data preprocessor resolves in MMAction2's scope
    model = MODELS.build(cfg.model)
    model.eval()

    class Frames(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.backbone, self.cls_head = model.backbone, model.cls_head

        def forward(self, frames):
            return self.cls_head(self.backbone(frames), num_segs=num_segments)

    info = get_model_complexity_info(
        Frames(),
        inputs=(torch.randn(num_segments, 3, size, size),),
        show_table=False,
        show_arch=False,
    )
    return info["flops"] / 1e9, sum(p.numel() for p in model.parameters()) / 1e6


def train_and_test(
    name: str,
    path: Path,
    data_root: Path,
    num_classes: int,
    epochs: int,
    seed: int,
    work_dir: Path,
    every_epoch: bool = True,
    progress=print,
) -> tuple[dict, dict]:
    """Train and test one of ``MOTION_CONFIGS`` on the clips in ``data_root`` with
    MMAction2's Runner; returns ``(row, full config)``."""
    from mmengine.config import Config
    from mmengine.runner import Runner

    cfg = Config.fromfile(str(path))
    _point_at(cfg, data_root)
    cfg.model.cls_head.num_classes = num_classes
    cfg.train_cfg.max_epochs = epochs
    cfg.param_scheduler[0]["T_max"] = epochs
    cfg.randomness = dict(seed=seed, deterministic=False)
    cfg.work_dir = str(work_dir / Path(path).stem)
    cfg.default_hooks.logger.interval = 1000  # one line per epoch is enough here
    if not every_epoch:
        cfg.train_cfg.val_interval = epochs
        cfg.default_hooks.checkpoint.interval = epochs
    gflops, params = model_flops(cfg, cfg.num_segments, 32)
    runner = Runner.from_cfg(cfg)
    started = time.time()
    runner.train()
    train_seconds = time.time() - started
    metrics = runner.test()
    row = {
        "model": name,
        "top1": float(metrics["acc/top1"]),
        "top5": float(metrics["acc/top5"]),
        "mean_class_acc": float(metrics["acc/mean1"]),
        "GFLOPs": gflops,
        "params_M": params,
        "train_seconds": round(train_seconds, 1),
    }
    progress(
        f"  {name}: test top-1 {row['top1']:.3f} after {epochs} epochs ({train_seconds:.0f} s)"
    )
    return row, cfg.to_dict()


def run_motion_benchmark(
    work_dir: Path,
    clips_per_class: dict[str, int],
    epochs: int,
    seed: int = 0,
    progress=print,
    level: str = "quick",
    every_epoch: bool = True,
    side_by_side: bool = False,
) -> dict:
    """Generate the clips (``level`` 'quick' or 'hard'), train and test each config with
    MMAction2's Runner; the head's class count follows the level's. ``every_epoch``: validate
    and save a checkpoint after every epoch, as the configs do (False: after the last).
    ``side_by_side``: the configs train at once, a process each (``plugins.processes``).

    Returns ``{"dataset": ..., "rows": [...], "configs": {name: full config}}``.
    """
    work_dir = Path(work_dir)
    data_root = work_dir / "motion_clips"
    start = time.time()
    dataset = write_motion_dataset(data_root, clips_per_class, seed=seed, level=level)
    progress(
        f"  wrote {sum(dataset['splits'].values())} mp4 clips to {data_root} "
        f"({time.time() - start:.0f} s)"
    )
    common = (data_root, len(dataset["classes"]), epochs, seed, work_dir, every_epoch)
    calls = [((name, path, *common), {}) for name, path in MOTION_CONFIGS.items()]
    if not side_by_side:  # here, so the caller's progress prints
        calls = [(args, {"progress": progress}) for args, _ in calls]
    done = run_side_by_side(train_and_test, calls, None if side_by_side else 1)
    rows = [row for row, _ in done]
    configs = {row["model"]: cfg for row, cfg in done}
    return {"dataset": dataset, "rows": rows, "configs": configs}


def plot_accuracy_vs_flops(rows: list[dict], path: Path, chance: float) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for row in rows:
        ax.scatter(row["GFLOPs"], row["top1"], s=40)
        ax.annotate(
            row["model"],
            (row["GFLOPs"], row["top1"]),
            textcoords="offset points",
            xytext=(5, 4),
            fontsize=8,
        )
    ax.axhline(chance, color="grey", linestyle=":", label=f"chance ({chance:.3f})")
    ax.axhline(0.5, color="grey", linestyle="--", label="frame-order-blind ceiling (0.5)")
    ax.set(
        xlabel="GFLOPs per 8-frame 32x32 clip (mmengine)",
        ylabel="test top-1",
        ylim=(0, 1.05),
        title="Direction-of-motion benchmark",
    )
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def sth_motion_stage(run_dir: Path, size: str = "default") -> StageResult:
    """``plugzoo demo`` stage: STH vs TSM vs TSN on freshly generated motion clips."""
    start = time.time()
    stage_dir = run_dir / "sth_motion"
    settings = SETTINGS[check_size(size)]
    clips, epochs = settings["clips"], settings["epochs"]
    result = run_motion_benchmark(
        stage_dir,
        clips,
        epochs,
        every_epoch=settings["every_epoch"],
        side_by_side=settings["side_by_side"],
    )
    (stage_dir / "motion_benchmark.json").write_text(json.dumps(result, indent=2, default=str))
    classes = len(result["dataset"]["classes"])
    figure = plot_accuracy_vs_flops(
        result["rows"], stage_dir / "accuracy_vs_flops.png", chance=1 / classes
    )
    stage = StageResult(
        name="mmaction.sth_motion",
        title="STH (MMAction2): direction-of-motion benchmark beside TSM and TSN",
        summary=(
            f"{classes} classes that differ only in the direction "
            f"of motion ({clips['train']}/{clips['val']}/{clips['test']} mp4 clips per class "
            f"for train/val/test, 8 frames of 32x32, seed 0), ResNet-18 from scratch for "
            f"{epochs} epochs with MMAction2's Runner. Chance is {1 / classes:.3f}; a "
            "frame-order-blind model (TSN) can at best tell the pair of directions (0.5)."
            + (
                " The three trained side by side, a process each with its share of the "
                "cores: their seconds are longer than alone."
                if settings["side_by_side"]
                else ""
            )
            + (
                " Quick settings: too short to learn; this checks the pipeline."
                if size == "quick"
                else ""
            )
        ),
        rows=result["rows"],
        config={
            "size": size,
            "clips_per_class": clips,
            "epochs": epochs,
            "every_epoch": settings["every_epoch"],
            "side_by_side": settings["side_by_side"],
            "configs": result["configs"],
        },
        figures=[str(figure.relative_to(run_dir))],
        seconds=time.time() - start,
    )
    notes = separation_notes(
        result["rows"],
        "top1",
        clips["test"] * classes,
        pairs=[
            ("STH-R18 (r=1/4)", "TSM-R18"),
            ("STH-R18 (r=1/4)", "TSN-R18"),
            ("TSM-R18", "TSN-R18"),
        ],
        items="test clips",
    )
    return flag(stage, notes)
