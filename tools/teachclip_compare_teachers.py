"""Do the fine-grained teachers know more than the students they will teach? CLIP4Clip meanP,
CLIP4Clip seqTransf, the X-CLIP-style and the X-Pool-style teacher trained the same way
(the embedded configs: same small CLIP from scratch, frames, words, epochs, batch,
optimiser) on the same embedded dataset, over several seeds; mean and spread of the test
metrics.

    python tools/teachclip_compare_teachers.py --out runs/teachclip-teachers \
        [--seeds 42 43 44] [--train 160 --val 24 --test 96] [--epochs 20] [--models ...]
        [--options run.batch_size_train=16 ...]

Writes ``<out>/results.json`` (every run's metrics with the full config that produced it)
and ``<out>/table.md``; prints progress and the table. One thread per run
(``OMP_NUM_THREADS=1`` is set for the runs if unset).
"""

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from retrieval_ext.datasets.synthetic import write_video_text_dataset  # noqa: E402
from retrieval_ext.demo import data_options  # noqa: E402
from retrieval_ext.launch import run  # noqa: E402

from plugins.paths import CONFIG_DIR  # noqa: E402

MODELS = {
    "CLIP4Clip meanP": CONFIG_DIR / "lavis/clip4clip/embedded_meanP.yaml",
    "CLIP4Clip seqTransf": CONFIG_DIR / "lavis/clip4clip/embedded_seqTransf.yaml",
    "X-CLIP teacher": CONFIG_DIR / "lavis/teachclip/xclip_embedded.yaml",
    "X-Pool teacher": CONFIG_DIR / "lavis/teachclip/xpool_embedded.yaml",
}
COLUMNS = ("t2v_r1", "t2v_r5", "t2v_r10", "t2v_sum_r", "v2t_r1", "v2t_r5", "v2t_r10", "v2t_sum_r")


def summarise(values: list[float]) -> str:
    """``mean ± sample std`` (the std needs two runs)."""
    if len(values) < 2:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--train", type=int, default=160, help="twin pairs")
    parser.add_argument("--val", type=int, default=24, help="twin pairs")
    parser.add_argument("--test", type=int, default=96, help="twin pairs (default: 4x the demo's)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--options", nargs="*", default=[], help="overrides for every run")
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()
    splits = {"train": args.train, "val": args.val, "test": args.test}
    start = time.time()
    dataset = write_video_text_dataset(out / "video_text", splits, seed=0)
    print(f"dataset: {dataset['splits']} clips ({time.time() - start:.0f} s)", flush=True)
    runs = []
    for seed in args.seeds:
        for name in args.models:
            options = data_options(Path(dataset["root"])) + [
                f"run.output_dir={out / 'runs'}",
                f"run.job_id={name.replace(' ', '_')}-{seed}",
                f"run.max_epoch={args.epochs}",
                f"run.seed={seed}",
                *args.options,
            ]
            result = run(str(MODELS[name]), options)
            metrics = result["test"]["test"]
            runs.append(
                {
                    "model": name,
                    "seed": seed,
                    "seconds": round(result["seconds"], 1),
                    "metrics": metrics,
                    "config": result["config"],
                }
            )
            print(
                f"{name} seed {seed}: t2v R@1 {metrics['t2v_r1']:.1f}, v2t R@1 "
                f"{metrics['v2t_r1']:.1f} ({result['seconds']:.0f} s)",
                flush=True,
            )
            (out / "results.json").write_text(
                json.dumps({"dataset": dataset, "args": vars(args), "runs": runs}, indent=1)
            )
    header = ["model", *COLUMNS, "train + test s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for name in args.models:
        mine = [r for r in runs if r["model"] == name]
        cells = [summarise([r["metrics"][c] for r in mine]) for c in COLUMNS]
        seconds = summarise([r["seconds"] for r in mine])
        lines.append("| " + " | ".join([name, *cells, seconds]) + " |")
    table = "\n".join(lines)
    note = (
        f"\n\n{len(args.seeds)} seeds ({', '.join(map(str, args.seeds))}); test: "
        f"{dataset['splits']['test']} clips, {dataset['captions']['test']} captions; "
        "recall in percent, mean ± sample standard deviation over seeds.\n"
    )
    (out / "table.md").write_text(table + note)
    print(table + note)


if __name__ == "__main__":
    main()
