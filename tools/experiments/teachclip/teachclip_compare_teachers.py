"""Do the fine-grained teachers know more than the students they will teach? CLIP4Clip meanP,
CLIP4Clip seqTransf, the X-CLIP-style and the X-Pool-style teacher trained the same way
(the embedded configs: same small CLIP from scratch, frames, words, epochs, batch,
optimiser) on the same embedded dataset, over several seeds; mean and spread of the test
metrics.

    python tools/experiments/teachclip/teachclip_compare_teachers.py --out runs/teachclip-teachers \
        [--seeds 42 43 44] [--train 160 --val 24 --test 96] [--epochs 20] [--models ...]
        [--options run.batch_size_train=16 ...]

Writes ``<out>/results.json`` (every run's metrics with the full config that produced it)
and ``<out>/table.md``; prints progress and the table. One thread per run
(``OMP_NUM_THREADS=1`` is set for the runs if unset).
"""

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

from retrieval_ext.datasets.synthetic import write_video_text_dataset  # noqa: E402
from retrieval_ext.demo import data_options  # noqa: E402
from retrieval_ext.seeded_runs import seed_table, seeded_run  # noqa: E402

from plugins.benchmarking import machine_stamp, write_results  # noqa: E402
from plugins.paths import CONFIG_DIR  # noqa: E402

MODELS = {
    "CLIP4Clip meanP": CONFIG_DIR / "lavis/clip4clip/embedded_meanP.yaml",
    "CLIP4Clip seqTransf": CONFIG_DIR / "lavis/clip4clip/embedded_seqTransf.yaml",
    "X-CLIP teacher": CONFIG_DIR / "lavis/teachclip/xclip_embedded.yaml",
    "X-Pool teacher": CONFIG_DIR / "lavis/teachclip/xpool_embedded.yaml",
}
COLUMNS = ("t2v_r1", "t2v_r5", "t2v_r10", "t2v_sum_r", "v2t_r1", "v2t_r5", "v2t_r10", "v2t_sum_r")


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
    runs, machine = [], machine_stamp()
    for seed in args.seeds:
        for name in args.models:
            options = data_options(Path(dataset["root"])) + [
                f"run.output_dir={out / 'runs'}",
                f"run.job_id={name.replace(' ', '_')}-{seed}",
                f"run.max_epoch={args.epochs}",
                f"run.seed={seed}",
                *args.options,
            ]
            runs.append(seeded_run(name, seed, MODELS[name], options))
            results = {"dataset": dataset, "args": vars(args), "machine": machine, "runs": runs}
            write_results(out, results)
    table = seed_table(runs, args.models, args.seeds, COLUMNS, dataset)
    write_results(out, markdown=table, markdown_name="table.md")
    print(table)


if __name__ == "__main__":
    main()
