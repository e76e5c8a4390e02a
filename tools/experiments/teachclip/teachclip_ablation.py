"""TeachCLIP's ablation on the embedded dataset: CLIP4Clip seqTransf; + AFA; + AFA + coarse
teaching; + AFA + fine teaching; full TeachCLIP with one teacher and with two, each row from
the same small CLIP initialisation (per seed), data, frames, words, epochs, batch and
optimiser, over several seeds; mean and spread of the test metrics.

    python tools/experiments/teachclip/teachclip_ablation.py --out runs/teachclip-ablation \
        [--seeds 42 43 44] [--train 160 --val 24 --test 96] [--epochs 20] [--rows ...]
        [--teacher-seed 42] [--options run.batch_size_train=16 ...] [--merge <other --out> ...]

Protocol:
- The dataset is written once (seed 0). The two teachers (``xclip-temporal_embedded.yaml``,
  ``xpool-tuned_embedded.yaml``, each for its config's epochs unless ``--teacher-epochs``)
  are trained once, with ``--teacher-seed``, on its training split, and
  their best-on-validation checkpoints teach every student row of every seed; a teacher
  whose checkpoint is already under ``<out>/runs/teacher-<name>`` is reused (its metrics
  from ``<out>/teachers.json``).
- Students: ``configs/lavis/clip4clip/embedded_seqTransf.yaml`` for the CLIP4Clip row,
  ``configs/lavis/teachclip/teachclip_embedded.yaml`` with overrides for the others. The
  ``+ AFA`` row has no teacher and the contrastive loss at weight 1 (CLIP4Clip's loss);
  rows with teachers use the official weights 0.2 / 1.0 / 2.0, with the unused term at 0;
  the one-teacher rows use the X-CLIP-style teacher (the stronger of the two here).
- Per row: test metrics of the best-on-validation checkpoint and the wall time of training
  plus testing (one thread per run: ``OMP_NUM_THREADS=1`` unless set).

Writes ``<out>/results.json`` after every run (every run's metrics with the full config
that produced it) and ``<out>/table.md`` at the end; prints progress and the table.
"""

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from retrieval_ext.datasets.synthetic import write_video_text_dataset  # noqa: E402
from retrieval_ext.demo import data_options  # noqa: E402
from retrieval_ext.launch import run  # noqa: E402
from retrieval_ext.seeded_runs import seed_table, seeded_run  # noqa: E402

from plugins.benchmarking import machine_stamp, write_results  # noqa: E402
from plugins.paths import CONFIG_DIR  # noqa: E402

TEACHERS = {  # the variants that train best on these clips (their configs say why)
    "xclip": CONFIG_DIR / "lavis/teachclip/xclip-temporal_embedded.yaml",
    "xpool": CONFIG_DIR / "lavis/teachclip/xpool-tuned_embedded.yaml",
}
CLIP4CLIP = CONFIG_DIR / "lavis/clip4clip/embedded_seqTransf.yaml"
TEACHCLIP = CONFIG_DIR / "lavis/teachclip/teachclip_embedded.yaml"
ONE_TEACHER = ["model.teachers.xpool=null"]
ROWS = {
    "CLIP4Clip seqTransf": (CLIP4CLIP, []),
    "+ AFA": (
        TEACHCLIP,
        ["model.teachers.xclip=null", *ONE_TEACHER, "model.loss_weights.contrastive=1.0"],
    ),
    "+ AFA + coarse (X-CLIP)": (TEACHCLIP, [*ONE_TEACHER, "model.loss_weights.fine=0.0"]),
    "+ AFA + fine (X-CLIP)": (TEACHCLIP, [*ONE_TEACHER, "model.loss_weights.coarse=0.0"]),
    "TeachCLIP, 1 teacher (X-CLIP)": (TEACHCLIP, ONE_TEACHER),
    "TeachCLIP, 2 teachers (X-CLIP + X-Pool)": (TEACHCLIP, []),
}
COLUMNS = ("t2v_r1", "t2v_r5", "t2v_r10", "t2v_medr", "t2v_sum_r", "v2t_r1", "v2t_sum_r")


def train_teachers(out: Path, base: list[str], seed: int, epochs, extra: list[str]) -> dict:
    """``{name: {"checkpoint", "metrics", "seconds"}}``, training the missing ones."""
    record = out / "teachers.json"
    known = json.loads(record.read_text()) if record.is_file() else {}
    for name, config in TEACHERS.items():
        job = out / "runs" / f"teacher-{name}"
        checkpoint = job / "checkpoint_best.pth"
        if checkpoint.is_file() and name in known:
            print(f"teacher {name}: reusing {checkpoint}", flush=True)
            continue
        options = base + [
            f"run.output_dir={out / 'runs'}",
            f"run.job_id=teacher-{name}",
            f"run.seed={seed}",
            *([f"run.max_epoch={epochs}"] if epochs else []),
            *extra,
        ]
        result = run(str(config), options)
        known[name] = {
            "checkpoint": str(checkpoint),
            "seed": seed,
            "metrics": result["test"]["test"],
            "seconds": round(result["seconds"], 1),
            "config": result["config"],
        }
        record.write_text(json.dumps(known, indent=1))
        print(
            f"teacher {name}: t2v R@1 {known[name]['metrics']['t2v_r1']:.1f} "
            f"({result['seconds']:.0f} s)",
            flush=True,
        )
    return known


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--train", type=int, default=160, help="twin pairs")
    parser.add_argument("--val", type=int, default=24, help="twin pairs")
    parser.add_argument("--test", type=int, default=96, help="twin pairs")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--teacher-seed", type=int, default=42)
    parser.add_argument("--teacher-epochs", type=int, help="default: each teacher config's")
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--options", nargs="*", default=[], help="overrides for every run")
    parser.add_argument(
        "--merge",
        nargs="*",
        default=[],
        help="other --out folders of this tool (same data and teachers, other seeds): their "
        "runs join this one's",
    )
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    splits = {"train": args.train, "val": args.val, "test": args.test}
    start = time.time()
    dataset = write_video_text_dataset(out / "video_text", splits, seed=0)
    print(f"dataset: {dataset['splits']} clips ({time.time() - start:.0f} s)", flush=True)
    base = data_options(Path(dataset["root"]))
    teachers = train_teachers(out, base, args.teacher_seed, args.teacher_epochs, args.options)
    teacher_options = [
        option
        for name in TEACHERS
        for option in (
            f"model.teachers.{name}.cfg_path={TEACHERS[name]}",
            f"model.teachers.{name}.checkpoint={teachers[name]['checkpoint']}",
        )
    ]
    results_path = out / "results.json"
    runs = json.loads(results_path.read_text())["runs"] if results_path.is_file() else []
    for folder in args.merge:  # seeds run in parallel processes, each in its own folder
        other = json.loads((Path(folder) / "results.json").read_text())
        if other["dataset"]["splits"] != dataset["splits"]:
            raise ValueError(f"{folder}: another dataset ({other['dataset']['splits']})")
        theirs = {n: t["checkpoint"] for n, t in other["teachers"].items()}
        if theirs != {n: t["checkpoint"] for n, t in teachers.items()}:
            raise ValueError(f"{folder}: other teachers ({theirs})")
        done = {(r["model"], r["seed"]) for r in runs}
        runs += [r for r in other["runs"] if (r["model"], r["seed"]) not in done]
    machine = machine_stamp()
    for seed in args.seeds:
        for name in args.rows:
            if any(r["model"] == name and r["seed"] == seed for r in runs):
                print(f"{name} seed {seed}: done before, kept", flush=True)
                continue
            config, row_options = ROWS[name]
            options = base + [
                f"run.output_dir={out / 'runs'}",
                f"run.job_id={name.replace(' ', '_').replace(',', '')}-{seed}",
                f"run.max_epoch={args.epochs}",
                f"run.seed={seed}",
                *(teacher_options if config == TEACHCLIP else []),
                *row_options,  # after the teachers' paths: null drops a teacher
                *args.options,
            ]
            runs.append(seeded_run(name, seed, config, options))
            results = {"dataset": dataset, "args": vars(args), "teachers": teachers}
            write_results(out, {**results, "machine": machine, "runs": runs})
    teacher_rows = [
        {**t, "model": f"teacher {name} (seed {t['seed']})"} for name, t in teachers.items()
    ]
    table = seed_table(runs, args.rows, args.seeds, COLUMNS, dataset, single=teacher_rows)
    write_results(out, markdown=table, markdown_name="table.md")
    print(table)


if __name__ == "__main__":
    main()
