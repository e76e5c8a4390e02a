"""Train and test STH, TSM and TSN (ResNet-18) on the embedded direction-of-motion clips.

    python tools/experiments/sth/sth_motion_benchmark.py [--level quick|hard] [--seeds 0 1 2]
        [--epochs 12] [--train 32 --val 8 --test 8] [--out runs/sth_motion]
    python tools/experiments/sth/sth_motion_benchmark.py --merge OUT_1 OUT_2 ... --out OUT
Each seed draws its own clips and initialisation. ``--merge`` summarises runs made
separately (e.g. one process per seed) from their motion_benchmark.json files. Writes
motion_benchmark.json (numbers per seed + full configs, the machine stamp),
motion_benchmark.md (mean and standard deviation over the seeds) and, for the first seed, a
plot of top-1 against FLOPs.
"""

import argparse
import json
from pathlib import Path

from mmaction_ext.demo import plot_accuracy_vs_flops, run_motion_benchmark

from tabulate import tabulate

from plugins.benchmarking import machine_stamp, mean_std, write_results


def summarise(runs: list[dict]) -> list[dict]:
    """One row per model: mean and (sample) standard deviation over the seeds' runs."""
    rows = []
    for i, first in enumerate(runs[0]["rows"]):
        per_seed = [run["rows"][i] for run in runs]
        row = {"model": first["model"], "seeds": len(per_seed)}
        for key in ("top1", "mean_class_acc", "train_seconds"):
            row[f"{key} mean"], row[f"{key} std"] = mean_std([r[key] for r in per_seed])
        row["top1 per seed"] = " ".join(f"{r['top1']:.3f}" for r in per_seed)
        row["GFLOPs"], row["params_M"] = first["GFLOPs"], first["params_M"]
        rows.append(row)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", choices=["quick", "hard"], default="quick")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--train", type=int, default=32)
    parser.add_argument("--val", type=int, default=8)
    parser.add_argument("--test", type=int, default=8)
    parser.add_argument("--out", type=Path, default=Path("runs/sth_motion"))
    parser.add_argument("--merge", type=Path, nargs="+", help="output folders to summarise")
    args = parser.parse_args(argv)
    clips = {"train": args.train, "val": args.val, "test": args.test}
    runs = []
    if args.merge:
        for folder in args.merge:
            merged = json.loads((folder / "motion_benchmark.json").read_text())
            runs += merged["runs"]
            args.level = merged["settings"]["level"]
    for seed in [] if args.merge else args.seeds:
        print(f"seed {seed}:", flush=True)
        runs.append(
            run_motion_benchmark(
                args.out / f"seed{seed}", clips, args.epochs, seed=seed, level=args.level
            )
        )
    rows = summarise(runs)
    table = tabulate(rows, headers="keys", floatfmt=".3f", tablefmt="github")
    print(table)
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    settings["merge"] = [str(p) for p in args.merge or []]
    result = {"settings": settings, "machine": machine_stamp(), "summary": rows, "runs": runs}
    write_results(
        args.out,
        result,
        table + "\n",
        json_name="motion_benchmark.json",
        markdown_name="motion_benchmark.md",
        indent=2,
        default=str,
    )
    classes = runs[0]["dataset"]["classes"]
    plot_accuracy_vs_flops(runs[0]["rows"], args.out / "accuracy_vs_flops.png", 1 / len(classes))
    print(f"written: {args.out}/motion_benchmark.md, .json, accuracy_vs_flops.png")


if __name__ == "__main__":
    main()
