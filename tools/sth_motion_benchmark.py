"""Train and test STH, TSM and TSN (ResNet-18) on the embedded direction-of-motion clips.

    python tools/sth_motion_benchmark.py [--epochs 12] [--train 32 --val 8 --test 8]
        [--out runs/sth_motion]
Writes motion_benchmark.json (numbers + full configs), motion_benchmark.md and a plot of
top-1 against FLOPs.
"""

import argparse
import json
from pathlib import Path

from mmaction_ext.demo import plot_accuracy_vs_flops, run_motion_benchmark

from tabulate import tabulate


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--train", type=int, default=32)
    parser.add_argument("--val", type=int, default=8)
    parser.add_argument("--test", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/sth_motion"))
    args = parser.parse_args(argv)
    result = run_motion_benchmark(
        args.out,
        {"train": args.train, "val": args.val, "test": args.test},
        args.epochs,
        seed=args.seed,
    )
    table = tabulate(result["rows"], headers="keys", floatfmt=".3f", tablefmt="github")
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "motion_benchmark.json").write_text(json.dumps(result, indent=2, default=str))
    (args.out / "motion_benchmark.md").write_text(table + "\n")
    plot_accuracy_vs_flops(result["rows"], args.out / "accuracy_vs_flops.png", chance=1 / 8)
    print(f"written: {args.out}/motion_benchmark.md, .json, accuracy_vs_flops.png")


if __name__ == "__main__":
    main()
