"""The TeachCLIP stage of ``plugzoo demo``: a CLIP4Clip-cost student and its teachers.

On the fine-grained embedded video-text dataset (``retrieval_ext.datasets.finegrained``:
the caption shown in 1 of 8 frames, distractors no caption names in the others) it trains,
each from the same small CLIP pre-trained on frame-caption pairs
(:func:`pretrain_frame_clip`): the X-CLIP-style and X-Pool-style teachers, CLIP4Clip
seqTransf, and the TeachCLIP student (seqTransf + AFA) taught online by both frozen
teachers. It tests each, reports where each puts its frame weight (percent on the content
frames) and measures what each costs per query once the videos are encoded: the teachers
score a caption against per-frame rows, the student stores and scores one vector per video,
as CLIP4Clip does. ``run_teachclip_demo`` is the stage without the report.
"""

from __future__ import annotations

import time
from pathlib import Path

from retrieval_ext.datasets.finegrained import write_finegrained_dataset
from retrieval_ext.demo.common import (
    COST_GALLERY,
    COST_KEY,
    COST_QUERIES,
    SIDE_BY_SIDE,
    cost_plot,
    data_options,
    one_thread_ms,
    tile,
)
from retrieval_ext.launch import run

from plugins.demo import check_size
from plugins.paths import CONFIG_DIR
from plugins.processes import run_side_by_side
from plugins.report import StageResult
from plugins.separation import flag, separation_notes

BEST = "checkpoint_best.pth"  # what LAVIS's runner saves for the best validated epoch
LAVIS = CONFIG_DIR / "lavis"
TEACHCLIP_MODELS = {
    # name: (config, what its gallery stores per video)
    "X-CLIP teacher": (LAVIS / "teachclip" / "xclip_finegrained.yaml", "rows"),
    "X-Pool teacher": (LAVIS / "teachclip" / "xpool_finegrained.yaml", "rows"),
    "CLIP4Clip seqTransf": (LAVIS / "clip4clip" / "finegrained_seqTransf.yaml", "vector"),
    "TeachCLIP student": (LAVIS / "teachclip" / "teachclip_finegrained.yaml", "vector"),
}
STUDENT = "TeachCLIP student"
SHARE_KEY = "weight on content frames %"  # AFA's (student), the frame relevance (teachers)
# clips per split (the frame-caption CLIP pre-trains on as many clips of its own), epochs of
# that pre-training and of every model, and whether the models the student does not need
# train side by side, per demo size
SETTINGS = {
    "quick": {
        "clips": {"train": 48, "val": 12, "test": 24},
        "pretrain_epochs": 2,
        "epochs": 2,
        "side_by_side": True,
    },
    "default": {
        "clips": {"train": 120, "val": 24, "test": 48},
        "pretrain_epochs": 5,
        "epochs": 4,
        "side_by_side": True,
    },
    "full": {
        "clips": {"train": 240, "val": 48, "test": 96},
        "pretrain_epochs": 10,
        "epochs": 10,
        "side_by_side": False,
    },
}


def per_query_cost(model, kind: str, loader) -> tuple[float, int]:
    """``(ms per query, bytes per video)`` of scoring ``COST_QUERIES`` test captions against
    ``COST_GALLERY`` stored gallery rows (the test gallery's rows tiled), one thread, queries
    encoded beforehand: the cost an index pays per query once the videos are encoded."""
    import torch

    texts = list(loader.dataset.text)[:COST_QUERIES]
    with torch.no_grad():
        if kind == "vector":
            rows = model.encode_video_loader(loader)
            queries = model.encode_texts(texts)
            gallery = tile(rows, COST_GALLERY)

            def search():
                return torch.topk(queries @ gallery.t(), k=10, dim=1)
        else:
            rows = model.encode_video_loader(loader, rows_of=model.gallery_row)
            queries = model.encode_queries(texts)
            gallery = tile(rows, COST_GALLERY)

            def search():
                return torch.topk(model.score_gallery(queries, gallery), k=10, dim=1)

        return one_thread_ms(search, len(texts)), rows.shape[1] * 4


FRAME_CLIP_CONFIG = CONFIG_DIR / "lavis" / "clip4clip" / "finegrained_meanP.yaml"


def pretrain_frame_clip(
    work_dir: Path,
    epochs: int,
    clips: int = 240,
    num_frames: int = 8,
    seed: int = 0,
    options: tuple[str, ...] = (),
) -> Path:
    """A small CLIP pre-trained on frame-caption pairs, as an OpenAI-format state dict
    file for ``model.pretrained``: CLIP4Clip meanP trained for ``epochs`` on fine-grained
    clips whose every frame shows the captioned content (``k = num_frames``; their own
    seed, apart from any dataset the CLIP is then tuned on), its CLIP taken from the best
    checkpoint. It stands in for CLIP's image-text pre-training, which a from-scratch CLIP
    lacks: from scratch, content in one frame of eight hardly trains (the TeachCLIP README).
    ``options``: further overrides of its run. Reused when ``work_dir`` holds one made
    with the same settings (their digest is in the file name)."""
    import hashlib
    import json

    import torch

    from plugins.compat.checkpoints import load_checkpoint

    work_dir = Path(work_dir)
    settings = json.dumps([epochs, clips, num_frames, seed, list(options)])
    target = work_dir / f"frame_clip-{hashlib.sha1(settings.encode()).hexdigest()[:10]}.pt"
    if target.is_file():
        return target
    splits = {"train": clips, "val": max(clips // 5, 2), "test": max(clips // 5, 2)}
    data = write_finegrained_dataset(
        work_dir / "frame_clips", splits, k=num_frames, seed=seed + 1, num_frames=num_frames
    )
    result = run(
        str(FRAME_CLIP_CONFIG),
        data_options(Path(data["root"]))
        + [
            f"run.output_dir={work_dir / 'runs'}",
            "run.job_id=frame_clip",
            f"run.max_epoch={epochs}",
            f"run.seed={seed}",
            *options,
        ],
    )
    checkpoint = Path(result["output_dir"]) / BEST
    state = load_checkpoint(checkpoint)["model"]
    clip = {k.removeprefix("clip."): v for k, v in state.items() if k.startswith("clip.")}
    torch.save(clip, target)
    return target


def trained_cost(config, options: list[str], checkpoint, kind: str) -> tuple[float, int]:
    """:func:`per_query_cost` of the model ``config`` and ``options`` build, loaded from its
    trained ``checkpoint``, on its test split."""
    from retrieval_ext.launch import build

    _, _, model, _, runner = build(
        str(config),
        [*options, "model.load_finetuned=true", f"model.finetuned={checkpoint}"],
        evaluate=True,
    )
    return per_query_cost(model.eval(), kind, runner.dataloaders["test"])


def run_teachclip_demo(
    work_dir: Path,
    clips: dict[str, int],
    epochs: int,
    pretrain_epochs: int,
    seed: int = 42,
    progress=print,
    side_by_side: bool = False,
) -> dict:
    """Pre-train the frame-caption CLIP, train the two teachers, CLIP4Clip seqTransf and
    the TeachCLIP student (taught by both) from it on the fine-grained dataset (content in
    1 of 8 frames), test each, and measure each one's per-query cost; returns
    ``{"dataset", "rows", "configs"}``.

    ``side_by_side``: the models the student does not need first (the teachers, seqTransf)
    train at once, a process each (``plugins.processes``); the student then trains on all
    threads."""
    work_dir = Path(work_dir)
    dataset = write_finegrained_dataset(work_dir / "video_text", clips, k=1, seed=0)
    frame_clip = pretrain_frame_clip(work_dir, pretrain_epochs, clips["train"])
    progress(f"  frame-caption CLIP pre-trained for {pretrain_epochs} epochs: {frame_clip}")
    base = data_options(Path(dataset["root"])) + [
        f"run.output_dir={work_dir / 'runs'}",
        f"run.max_epoch={epochs}",
        f"run.seed={seed}",
        f"model.pretrained={frame_clip}",
    ]
    options = {
        name: [*base, f"run.job_id={name.split()[0].lower().replace('-', '')}"]
        for name in TEACHCLIP_MODELS
    }
    first = [name for name in TEACHCLIP_MODELS if name != STUDENT]
    calls = [((str(TEACHCLIP_MODELS[name][0]), options[name]), {}) for name in first]
    processes = None if side_by_side else 1
    results = dict(zip(first, run_side_by_side(run, calls, processes), strict=True))
    checkpoints = {name: Path(r["output_dir"]) / BEST for name, r in results.items()}
    for name, label in (("X-CLIP teacher", "xclip"), ("X-Pool teacher", "xpool")):
        options[STUDENT] += [
            f"model.teachers.{label}.cfg_path={TEACHCLIP_MODELS[name][0]}",
            f"model.teachers.{label}.checkpoint={checkpoints[name]}",
        ]
    results[STUDENT] = run(str(TEACHCLIP_MODELS[STUDENT][0]), options[STUDENT])
    checkpoints[STUDENT] = Path(results[STUDENT]["output_dir"]) / BEST

    rows, configs = [], {}
    for name, (path, kind) in TEACHCLIP_MODELS.items():
        cost_ms, row_bytes = trained_cost(path, options[name], checkpoints[name], kind)
        result = results[name]
        metrics = result["test"]["test"]
        share = metrics.get("afa_content_share", metrics.get("teacher_content_share"))
        rows.append(
            {
                "model": name,
                "t2v R@1": metrics["t2v_r1"],
                "t2v R@5": metrics["t2v_r5"],
                "v2t R@1": metrics["v2t_r1"],
                SHARE_KEY: share,
                "bytes per video": row_bytes,
                COST_KEY: cost_ms,
                "train+test s": round(result["seconds"], 1),
            }
        )
        configs[name] = result["config"]
        progress(
            f"  {name}: t2v R@1 {metrics['t2v_r1']:.1f}, {cost_ms:.3f} ms per query "
            f"({result['seconds']:.0f} s)"
        )
    return {"dataset": dataset, "rows": rows, "configs": configs, "frame_clip": str(frame_clip)}


def teachclip_stage(run_dir: Path, size: str = "default") -> StageResult:
    """``plugzoo demo`` stage: the TeachCLIP student beside its teachers and CLIP4Clip."""
    start = time.time()
    run_dir = Path(run_dir)
    settings = SETTINGS[check_size(size)]
    clips, epochs = settings["clips"], settings["epochs"]
    result = run_teachclip_demo(
        run_dir / "teachclip",
        clips,
        epochs,
        settings["pretrain_epochs"],
        side_by_side=settings["side_by_side"],
    )
    dataset = result["dataset"]
    figure = cost_plot(
        result["rows"],
        run_dir / "teachclip" / "teachclip_cost.png",
        metric_key="t2v R@1",
        ylabel="text-to-video R@1 (%)",
        title="TeachCLIP: retrieval quality against per-query cost",
    )
    stage = StageResult(
        name="lavis.teachclip",
        title="TeachCLIP (LAVIS): a CLIP4Clip-cost student taught by fine-grained teachers",
        summary=(
            "The X-CLIP-style and X-Pool-style teachers, CLIP4Clip seqTransf and the TeachCLIP "
            "student (seqTransf + AFA, taught online by both frozen teachers) on clips whose "
            "caption is shown in 1 of their 8 frames, at a position drawn per clip, the other "
            "frames distractors no caption names. Each starts from the same small CLIP, "
            f"pre-trained for {settings['pretrain_epochs']} epochs on frame-caption pairs "
            f"(clips of their own whose every frame shows the content), and trains for "
            f"{epochs} epochs on {dataset['splits']['train']} clips; tested on "
            f"{dataset['splits']['test']} ({dataset['captions']['test']} captions). "
            f"`{SHARE_KEY}`: the percent of the student's AFA weight, or of a teacher's "
            "frame-text relevance for each clip's own captions, on the content frame (chance "
            f"{100 / dataset['num_frames']:.1f}). Per-query cost: {COST_QUERIES} encoded "
            f"test captions scored against {COST_GALLERY:,} stored gallery rows (the test "
            "gallery's rows tiled), one thread; the student stores and scores exactly what "
            "CLIP4Clip does. One seed: `tools/experiments/teachclip/teachclip_ablation.py` "
            "runs three, with every ablation row." + SIDE_BY_SIDE * settings["side_by_side"]
        ),
        rows=result["rows"],
        config={"size": size, **settings, "configs": result["configs"]},
        figures=[str(figure.relative_to(run_dir))],
        seconds=time.time() - start,
    )
    notes = separation_notes(
        result["rows"],
        "t2v R@1",
        dataset["captions"]["test"],
        scale=100,
        pairs=[
            ("TeachCLIP student", "CLIP4Clip seqTransf"),
            ("TeachCLIP student", "X-CLIP teacher"),
            ("TeachCLIP student", "X-Pool teacher"),
            ("X-CLIP teacher", "CLIP4Clip seqTransf"),
        ],
        items="test captions",
    )
    return flag(stage, notes)
