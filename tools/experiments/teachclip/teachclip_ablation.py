"""TeachCLIP's ablation on the fine-grained embedded dataset (the caption in k of 8 frames,
distractors in the others): CLIP4Clip meanP and seqTransf, the X-CLIP-style and X-Pool-style
teachers, and the student (seqTransf + AFA) alone, with coarse teaching, with fine teaching,
and in full with one teacher and with two; each row from the same small frame-caption CLIP,
data, frames, words, epochs, batch and optimiser, over several seeds, with where each model
puts its frame weight and what a query costs.

    python tools/experiments/teachclip/teachclip_ablation.py --out runs/teachclip-ablation \
        [--seeds 42 43 44] [--jobs 2] [--k 1] [--distractors neutral|other-captions]
        [--train 240 --val 48 --test 96] [--epochs 10] [--teacher-epochs N]
        [--pretrain-epochs 10] [--one-teacher xclip|xpool] [--rows ...]
        [--options run.batch_size_train=16 ...] [--data <a dataset folder>]
        [--frame-clip <file>] [--merge <other --out> ...]

Protocol:
- The dataset is written once (seed 0) under ``<out>/video_text`` unless ``--data`` names
  one (written by ``tools/data/lavis/make_finegrained_video_text_dataset.py``).
- Every row starts from the same small CLIP, pre-trained once (seed 0) for
  ``--pretrain-epochs`` on frame-caption pairs: ``--train`` fine-grained clips of their own
  whose every frame shows the content (``retrieval_ext.demo.teachclip.pretrain_frame_clip``;
  it stands in for CLIP's image-text pre-training). From scratch (``--pretrain-epochs 0``)
  content in one frame of eight hardly trains in a CPU budget.
- Per seed, the two teachers (``xclip_finegrained.yaml``, ``xpool_finegrained.yaml``) are
  trained first, with that seed (for ``--teacher-epochs``, default ``--epochs``); their
  best-on-validation checkpoints teach that seed's students, and their own test metrics are
  the teacher rows. No teacher is shared between seeds.
- Students: ``configs/lavis/clip4clip/finegrained_{meanP,seqTransf}.yaml`` for the CLIP4Clip
  rows, ``configs/lavis/teachclip/teachclip_finegrained.yaml`` with overrides for the
  others: ``student AFA`` has no teacher (the contrastive loss alone); ``+ coarse`` and
  ``+ fine`` keep one term of the teaching (the other at 0) with ``--one-teacher``; the
  full rows take the loss weights of the config.
- Per run: the test metrics of the best-on-validation checkpoint, with the frame-weight
  metrics of the text-video task (share of the student's AFA weight and of each teacher's
  frame-text relevance on the content frames, and the chance share k/F), the wall time of
  training plus testing (one thread per run: ``OMP_NUM_THREADS=1`` unless set), and the
  per-query cost of the trained model: bytes stored per video and milliseconds per query
  scored against 10,000 stored rows on one thread (``retrieval_ext.demo.teachclip``).
- ``--jobs N``: the seeds run as N parallel processes of this tool, each in
  ``<out>/seed-<seed>``, merged into ``<out>`` as each one ends.

Writes ``<out>/results.json`` after every run (every run's metrics, cost and full config)
and, at the end, ``<out>/table.md`` and ``<out>/table.json`` (the same table as an entry of
``docs/benchmarks/results/teachclip.json``, for ``tools/misc/benchmark_tables.py``); prints
progress lines and the table.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from retrieval_ext.datasets.finegrained import DISTRACTORS, write_finegrained_dataset  # noqa: E402
from retrieval_ext.demo import data_options  # noqa: E402
from retrieval_ext.demo.common import COST_GALLERY  # noqa: E402
from retrieval_ext.demo.teachclip import pretrain_frame_clip, trained_cost  # noqa: E402
from retrieval_ext.seeded_runs import seeded_run  # noqa: E402

from plugins.benchmarking import machine_stamp, mean_std, write_results  # noqa: E402
from plugins.benchmarking import mean_std_text as summarise  # noqa: E402
from plugins.paths import CONFIG_DIR  # noqa: E402

LAVIS = CONFIG_DIR / "lavis"
TEACHERS = {  # label in the student's config -> (row, config)
    "xclip": ("X-CLIP teacher", LAVIS / "teachclip/xclip_finegrained.yaml"),
    "xpool": ("X-Pool teacher", LAVIS / "teachclip/xpool_finegrained.yaml"),
}
TEACHCLIP = LAVIS / "teachclip/teachclip_finegrained.yaml"
NO_TEACHERS = [f"model.teachers.{label}=null" for label in TEACHERS]
# row -> (config, overrides, what its index stores per video); "{other}" is the teacher
# that the one-teacher rows drop
ROWS = {
    "CLIP4Clip meanP": (LAVIS / "clip4clip/finegrained_meanP.yaml", [], "vector"),
    "CLIP4Clip seqTransf": (LAVIS / "clip4clip/finegrained_seqTransf.yaml", [], "vector"),
    "X-CLIP teacher": (TEACHERS["xclip"][1], [], "rows"),
    "X-Pool teacher": (TEACHERS["xpool"][1], [], "rows"),
    "student AFA": (TEACHCLIP, NO_TEACHERS, "vector"),
    "+ coarse ({one})": (
        TEACHCLIP,
        ["model.teachers.{other}=null", "model.loss_weights.fine=0.0"],
        "vector",
    ),
    "+ fine ({one})": (
        TEACHCLIP,
        ["model.teachers.{other}=null", "model.loss_weights.coarse=0.0"],
        "vector",
    ),
    "full, 1 teacher ({one})": (TEACHCLIP, ["model.teachers.{other}=null"], "vector"),
    "full, 2 teachers": (TEACHCLIP, [], "vector"),
}
SHORT = {"xclip": "X-CLIP", "xpool": "X-Pool"}
BEST = "checkpoint_best.pth"  # what LAVIS's runner saves for the best validated epoch
METRICS = ("t2v_r1", "t2v_r5", "t2v_sum_r", "v2t_r1")
SHARES = {  # frame-weight metric -> column
    "afa_content_share": "AFA on content %",
    "teacher_content_share": "relevance on content %",
    "teacher_xclip_content_share": "X-CLIP's relevance %",
    "teacher_xpool_content_share": "X-Pool's relevance %",
}


def row_name(row: str, one: str) -> str:
    return row.format(one=SHORT[one])


def job_name(name: str, seed: int) -> str:
    keep = "".join(c if c.isalnum() or c in "-+" else "_" for c in name)
    return f"{keep.strip('_')}-{seed}"


def run_seed(out: Path, dataset: dict, seed: int, args, runs: list[dict], write) -> None:
    """Every asked row of one seed, its teachers first; each run appended to ``runs`` and
    ``write()`` called after it. Runs already in ``runs`` are kept."""
    base = data_options(Path(dataset["root"])) + [
        f"run.output_dir={out / 'runs'}",
        f"run.seed={seed}",
        *([f"model.pretrained={args.frame_clip}"] if args.frame_clip else []),
    ]
    other = next(label for label in TEACHERS if label != args.one_teacher)
    taught = any(ROWS[r][0] == TEACHCLIP and ROWS[r][1] != NO_TEACHERS for r in args.rows)
    teacher_rows = [TEACHERS[label][0] for label in TEACHERS] if taught else []
    # the teachers first: their checkpoints teach this seed's students (a teacher row not
    # asked for is still trained and recorded when a student needs it)
    order = teacher_rows + [r for r in args.rows if r not in teacher_rows]
    checkpoints = {}
    for row in order:
        name = row_name(row, args.one_teacher)
        config, overrides, kind = ROWS[row]
        done = next((r for r in runs if r["model"] == name and r["seed"] == seed), None)
        if done is not None:
            print(f"{name} seed {seed}: done before, kept", flush=True)
        else:
            teacher = config in (path for _, path in TEACHERS.values())
            epochs = args.teacher_epochs if teacher and args.teacher_epochs else args.epochs
            options = [
                *base,
                f"run.job_id={job_name(name, seed)}",
                f"run.max_epoch={epochs}",
                *(
                    option
                    for label, (teacher_row, path) in TEACHERS.items()
                    for option in (
                        f"model.teachers.{label}.cfg_path={path}",
                        f"model.teachers.{label}.checkpoint={checkpoints.get(teacher_row)}",
                        # a teacher is rebuilt from its config: with the model options it
                        # trained with
                        *(
                            f"model.teachers.{label}.model_overrides.{o.removeprefix('model.')}"
                            for o in args.options
                            if o.startswith("model.")
                        ),
                    )
                    if config == TEACHCLIP
                ),
                *(o.format(other=other) for o in overrides),  # after the teachers: null drops
                *args.options,
            ]
            record = seeded_run(name, seed, config, options)
            record["checkpoint"] = str(Path(record["output_dir"]) / BEST)
            ms, row_bytes = trained_cost(config, options, record["checkpoint"], kind)
            record["cost"] = {"bytes_per_video": row_bytes, "ms_per_query": ms}
            shares = ", ".join(
                f"{column} {record['metrics'][key]:.1f}"
                for key, column in SHARES.items()
                if key in record["metrics"]
            )
            print(
                f"{name} seed {seed}: {shares}{', ' if shares else ''}{row_bytes} bytes per "
                f"video, {ms:.3f} ms per query",
                flush=True,
            )
            runs.append(record)
            write()
            done = record
        if row in teacher_rows:
            checkpoints[row] = done["checkpoint"]


def ablation_table(runs: list[dict], names: list[str], seeds: list[int], dataset: dict) -> str:
    """One row per name: mean ± std over ``seeds`` of the retrieval metrics, the
    frame-weight shares the rows have, and the per-query cost; the note says what the
    numbers are."""
    shares = [key for key in SHARES if any(key in r["metrics"] for r in runs)]
    header = ["model", *METRICS, *(SHARES[k] for k in shares)]
    header += ["bytes per video", f"ms per query at N={COST_GALLERY:,}", "train + test s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in names:
        mine = [r for r in runs if r["model"] == name and r["seed"] in seeds]
        if not mine:
            continue
        cells = [summarise([r["metrics"][c] for r in mine]) for c in METRICS]
        for key in shares:
            values = [r["metrics"][key] for r in mine if key in r["metrics"]]
            cells.append(summarise(values) if values else "–")
        cells.append(str(mine[0]["cost"]["bytes_per_video"]))
        cells.append(summarise([r["cost"]["ms_per_query"] for r in mine], digits=3))
        cells.append(summarise([r["seconds"] for r in mine], digits=0))
        lines.append("| " + " | ".join([name, *cells]) + " |")
    chance = [r["metrics"]["content_share_chance"] for r in runs if r["seed"] in seeds]
    note = (
        f"\n\n{len(seeds)} seeds ({', '.join(map(str, seeds))}); each seed trains its own "
        f"teachers. Data: content in {dataset['k']} of {dataset['num_frames']} frames, "
        f"{dataset['distractors']} distractors; test: {dataset['splits']['test']} clips, "
        f"{dataset['captions']['test']} captions. Recall in percent, mean ± sample standard "
        "deviation over seeds. Shares: percent of the AFA pooling weight, or of a teacher's "
        "frame-text relevance for each clip's own captions, on the content frames (mean over "
        f"test clips); chance (uniform weights) {sum(chance) / max(len(chance), 1):.1f}. "
        "Per-query cost on one thread, measured beside the other runs.\n"
    )
    return "\n".join(lines) + note


def benchmark_entry(
    runs: list[dict], names: list[str], seeds: list[int], dataset: dict, command: str
) -> dict:
    """The table of :func:`ablation_table` as a ``docs/benchmarks/results/<paper>.json``
    table entry (``tools/misc/benchmark_tables.py``): cells ``[mean, std]`` over seeds."""
    table = ablation_table(runs, names, seeds, dataset)
    shares = [key for key in SHARES if any(key in r["metrics"] for r in runs)]
    pair = {"format": "{:.1f} ± {:.1f}"}
    columns = ["model", *({"name": c, **pair} for c in METRICS)]
    columns += [{"name": SHARES[k], **pair} for k in shares]
    columns += [
        "bytes per video",
        {"name": f"ms per query at N={COST_GALLERY:,}", "format": "{:.3f} ± {:.3f}"},
        {"name": "train + test s", "format": "{:.0f} ± {:.0f}"},
    ]
    rows = []
    for name in names:
        mine = [r for r in runs if r["model"] == name and r["seed"] in seeds]
        if not mine:
            continue
        cells = [list(mean_std([r["metrics"][c] for r in mine])) for c in METRICS]
        for key in shares:
            values = [r["metrics"][key] for r in mine if key in r["metrics"]]
            cells.append(list(mean_std(values)) if values else None)
        cells.append(mine[0]["cost"]["bytes_per_video"])
        cells.append(list(mean_std([r["cost"]["ms_per_query"] for r in mine])))
        cells.append(list(mean_std([r["seconds"] for r in mine])))
        rows.append([name, *cells])
    note = table.split("\n\n", 1)[1].strip()
    return {"command": command, "columns": columns, "rows": rows, "note": note}


def same_data(mine: dict, theirs: dict) -> bool:
    keys = ("splits", "k", "num_frames", "distractors", "seed")
    return all(mine.get(key) == theirs.get(key) for key in keys)


def merge(runs: list[dict], folder: Path, dataset: dict) -> None:
    """Add the runs of another ``--out`` of this tool (same data) that ``runs`` lacks."""
    path = Path(folder) / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no results of this tool to merge")
    other = json.loads(path.read_text())
    if not same_data(other["dataset"], dataset):
        raise ValueError(f"{folder}: another dataset ({other['dataset']}), not {dataset}")
    done = {(r["model"], r["seed"]) for r in runs}
    runs += [r for r in other["runs"] if (r["model"], r["seed"]) not in done]


def child_command(args, seed: int, out: Path, data: Path) -> list[str]:
    """This tool for one seed in ``<out>/seed-<seed>``, on the dataset at ``data``."""
    command = [sys.executable, str(Path(__file__).resolve()), "--out", str(out / f"seed-{seed}")]
    command += ["--data", str(data), "--seeds", str(seed), "--epochs", str(args.epochs)]
    command += ["--one-teacher", args.one_teacher, "--rows", *args.rows]
    command += ["--pretrain-epochs", str(args.pretrain_epochs)]
    if args.frame_clip:
        command += ["--frame-clip", str(args.frame_clip)]
    if args.teacher_epochs:
        command += ["--teacher-epochs", str(args.teacher_epochs)]
    if args.options:
        command += ["--options", *args.options]
    return command


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--jobs", type=int, default=1, help="seeds run as this many processes")
    parser.add_argument("--k", type=int, default=1, help="frames of 8 that show the content")
    parser.add_argument("--distractors", default="neutral", choices=DISTRACTORS)
    parser.add_argument("--train", type=int, default=240, help="clips")
    parser.add_argument("--val", type=int, default=48, help="clips")
    parser.add_argument("--test", type=int, default=96, help="clips")
    parser.add_argument("--data", help="an existing fine-grained dataset folder to use")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--teacher-epochs", type=int, help="default: --epochs")
    parser.add_argument(
        "--pretrain-epochs",
        type=int,
        default=10,
        help="epochs of the frame-caption CLIP every row starts from (0: from scratch)",
    )
    parser.add_argument("--frame-clip", help="a frame-caption CLIP file to use, not train")
    parser.add_argument("--one-teacher", default="xclip", choices=list(TEACHERS))
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--options", nargs="*", default=[], help="overrides for every run")
    parser.add_argument(
        "--merge",
        nargs="*",
        default=[],
        help="other --out folders of this tool (same data, other seeds): their runs join "
        "this one's",
    )
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    start = time.time()
    if args.data:
        summary = Path(args.data) / "dataset.json"
        if not summary.is_file():
            raise FileNotFoundError(f"--data {args.data}: no dataset.json (not a dataset folder)")
        dataset = json.loads(summary.read_text())
    else:
        splits = {"train": args.train, "val": args.val, "test": args.test}
        dataset = write_finegrained_dataset(
            out / "video_text", splits, k=args.k, distractors=args.distractors, seed=0
        )
    print(f"dataset: {dataset['splits']} clips ({time.time() - start:.0f} s)", flush=True)
    if args.pretrain_epochs and not args.frame_clip:
        frame_clip = pretrain_frame_clip(
            out, args.pretrain_epochs, args.train, options=tuple(args.options)
        )
        args.frame_clip = str(frame_clip)
        print(f"frame-caption CLIP: {args.frame_clip} ({time.time() - start:.0f} s)", flush=True)
    results_path = out / "results.json"
    runs = json.loads(results_path.read_text())["runs"] if results_path.is_file() else []
    for folder in args.merge:
        merge(runs, folder, dataset)
    machine = machine_stamp()

    def write():
        results = {"dataset": dataset, "args": vars(args), "machine": machine, "runs": runs}
        write_results(out, results)

    names = [row_name(r, args.one_teacher) for r in args.rows]
    if args.jobs > 1:  # a seed with any asked row missing runs again (its done rows kept)
        done = {(r["model"], r["seed"]) for r in runs}
        todo = [s for s in args.seeds if any((name, s) not in done for name in names)]

        def one_seed(seed):
            subprocess.run(child_command(args, seed, out, Path(dataset["root"])), check=True)
            return seed

        with ThreadPoolExecutor(args.jobs) as pool:
            for seed in pool.map(one_seed, todo):
                merge(runs, out / f"seed-{seed}", dataset)
                write()
    else:
        for seed in args.seeds:
            run_seed(out, dataset, seed, args, runs, write)
    write()
    table = ablation_table(runs, names, args.seeds, dataset)
    write_results(out, markdown=table, markdown_name="table.md")
    given = sys.argv[1:] if argv is None else [str(a) for a in argv]
    command = " ".join(["python", "tools/experiments/teachclip/teachclip_ablation.py", *given])
    entry = benchmark_entry(runs, names, args.seeds, dataset, command)
    write_results(out, entry, json_name="table.json")
    print(table)


if __name__ == "__main__":
    main()
