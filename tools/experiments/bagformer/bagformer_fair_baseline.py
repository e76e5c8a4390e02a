"""BagFormer against ALBEF from one shared pre-trained start: LAVIS's own ALBEF
pre-training once, then ALBEF's retrieval fine-tuning (its own recipe) and BagFormer with
its ablations fine-tuned from that checkpoint with the same steps and schedule, over
several seeds; one table with each row's compute.

    python tools/experiments/bagformer/bagformer_fair_baseline.py --out runs/bagformer-fair \
        [--data data/image_text] [--seeds 42 43 44] [--jobs 3] [--pretrain-epochs 30]
        [--epochs 10] [--pretrain-seed 42] [--runs albef bagformer tokenwise cls_token oracle]
        [--dictionary-flags='--min-count 5 ...'] [--options key=value ...]
        [--pretrain-options key=value ...] [--pretrained-from EARLIER_OUT]

Protocol:
- Data: ``--data`` (written by ``tools/data/lavis/make_image_text_dataset.py`` with its
  defaults when the folder holds no ``dataset.json``).
- Entity dictionary: ``tools/data/lavis/bagformer_dictionary.py`` on the TRAINING captions
  (``--dictionary-flags`` passed on), written to ``<data>/derived_entities.txt``, its
  report (phrases, coverage, precision and recall against the generator's phrase list) to
  ``<out>/dictionary.json``. The generator's own ``entities.txt`` is the ``oracle`` run.
- Pre-training, once (``--pretrain-seed``): ``configs/lavis/albef/embedded_pretrain.yaml``
  (LAVIS's ``albef_pretrain``: ITC against a queue with momentum distillation, ITM with hard
  negatives, MLM) for ``--pretrain-epochs``, to ``<out>/pretrain/pretrain/checkpoint_latest.pth``;
  with ``--pretrained-from`` the pre-training of that earlier ``--out`` (kept only if it came
  from the same pre-training command) and its test of the pre-trained ALBEF.
- Fine-tuning, per seed, every run from that checkpoint for ``--epochs`` (same batch, so the
  same steps) with the learning rate and schedule of the fine-tuning configs:
  ``albef`` (``configs/lavis/albef/embedded_finetune.yaml``: queue, momentum,
  distillation, ITM re-rank of the ITC top ``k_test``), ``bagformer``
  (``configs/lavis/bagformer/embedded_finetune.yaml``, the derived dictionary),
  ``tokenwise`` and ``cls_token`` (its ``model.interaction``), ``oracle`` (bagwise with the
  generator's phrase list). Each run is tested at its best-on-validation checkpoint; one
  run gives several rows (ALBEF: ITC alone and ITM re-rank; BagFormer: recall, rank,
  merge), which share its compute.
- Before fine-tuning, the pre-trained ALBEF is tested as it is (ITC and ITM re-rank): the
  note says whether the shared start learned to match images and captions at all.
- Compute: training seconds (LAVIS's per-epoch iteration time x iterations, validation and
  test excluded) and optimiser steps of each run, and of the pre-training.
- Whether each re-rank stage improves on its own first stage (ALBEF's ITM re-rank on ITC,
  BagFormer's rank and merge on recall): the mean-recall difference, its per-seed signs, and
  whether it exceeds the seed spread (the two standard deviations added).
- ``--jobs N``: N fine-tuning runs at once, one process each (``OMP_NUM_THREADS=1``
  unless set). A run whose ``result.json`` exists is kept, so an interrupted call resumes;
  one written by another command (other epochs, options...) is an error naming it.

Writes ``<out>/results.json`` after every run, and at the end ``<out>/table.md`` and
``<out>/table.json`` (the table as an entry of ``docs/benchmarks/results/bagformer.json``,
for ``tools/misc/benchmark_tables.py``); prints progress lines and the table.
"""

import argparse
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from plugins.benchmarking import machine_stamp, mean_std, write_results
from plugins.benchmarking import mean_std_text as summarise

REPO = Path(__file__).resolve().parents[3]
LAVIS = REPO / "configs" / "lavis"
PRETRAIN = LAVIS / "albef" / "embedded_pretrain.yaml"
ALBEF = LAVIS / "albef" / "embedded_finetune.yaml"
BAGFORMER = LAVIS / "bagformer" / "embedded_finetune.yaml"
DICTIONARY_TOOL = REPO / "tools" / "data" / "lavis" / "bagformer_dictionary.py"
DATA_TOOL = REPO / "tools" / "data" / "lavis" / "make_image_text_dataset.py"
TRAIN = REPO / "tools" / "lavis_train.py"
EVALUATE = REPO / "tools" / "lavis_evaluate.py"
DERIVED = "derived_entities.txt"
METRICS = ("txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10", "r_mean")
HEADERS = ("i->t R@1", "i->t R@5", "i->t R@10", "t->i R@1", "t->i R@5", "t->i R@10")
# run -> (config, its overrides ("{data}": the dataset folder), [(row, metric prefix)])
RUNS = {
    "albef": (
        ALBEF,
        [],
        [("ALBEF ITC (dual encoder)", "itc_"), ("ALBEF ITC + ITM re-rank (top k_test)", "")],
    ),
    "bagformer": (
        BAGFORMER,
        [f"model.entity_dictionary={{data}}/{DERIVED}"],
        [("BagFormer recall", "recall_"), ("BagFormer rank", "rank_"), ("BagFormer merge", "")],
    ),
    "tokenwise": (
        BAGFORMER,
        ["model.interaction=tokenwise"],
        [("tokenwise recall", "recall_"), ("tokenwise merge", "")],
    ),
    "cls_token": (
        BAGFORMER,
        ["model.interaction=cls_token"],
        [("cls_token recall ([CLS] dual encoder)", "recall_"), ("cls_token merge", "")],
    ),
    "oracle": (
        BAGFORMER,
        ["model.entity_dictionary={data}/entities.txt"],
        [
            ("oracle dictionary: BagFormer recall", "recall_"),
            ("oracle dictionary: BagFormer merge", ""),
        ],
    ),
}
# (re-rank row, its first-stage row): does the second stage add recall?
STAGES = (
    ("ALBEF ITC + ITM re-rank (top k_test)", "ALBEF ITC (dual encoder)"),
    ("BagFormer rank", "BagFormer recall"),
    ("BagFormer merge", "BagFormer recall"),
    ("cls_token merge", "cls_token recall ([CLS] dual encoder)"),
)
BEYOND = {True: "yes", False: "no", None: "one seed"}
EPOCH_START = re.compile(r"Start training epoch (\d+), (\d+) iters per inner epoch")
EPOCH_END = re.compile(r"Train: data epoch: \[(\d+)\] Total time: \S+ \(([\d.]+) s / it\)")


def data_options(root: Path, builder: str = "embedded_image_text") -> list[str]:
    """``--options`` pointing a config's ``builder`` at the dataset in ``root`` (the
    pre-training builder reads the train split alone)."""
    prefix = f"datasets.{builder}.build_info"
    splits = ("train",) if builder.endswith("_pretrain") else ("train", "val", "test")
    return [
        f"{prefix}.annotations.{split}.storage={root / 'annotations' / f'{split}.json'}"
        for split in splits
    ] + [f"{prefix}.images.storage={root / 'images'}"]


def training_compute(log: str) -> dict:
    """Training seconds and optimiser steps from LAVIS's training log: each epoch's
    iterations (``Start training epoch``) times its mean seconds per iteration (the
    ``Total time`` line), validation and test excluded."""
    iters = {int(m[1]): int(m[2]) for m in EPOCH_START.finditer(log)}
    seconds = {int(m[1]): float(m[2]) for m in EPOCH_END.finditer(log)}
    if not iters or set(iters) != set(seconds):
        raise ValueError(
            f"training log: epochs started {sorted(iters)}, finished {sorted(seconds)}"
        )
    return {
        "train_seconds": round(sum(iters[e] * seconds[e] for e in iters), 1),
        "steps": sum(iters.values()),
        "epochs": len(iters),
    }


def train(cfg: Path, options: list[str], out_dir: Path, evaluate: bool = False) -> dict:
    """One ``tools/lavis_train.py`` run (``tools/lavis_evaluate.py`` with ``evaluate``:
    the test splits alone, no compute) into ``out_dir``, kept when its ``result.json``
    exists and came from the same command (another command's is an error): its test
    metrics, compute and command."""
    tool = EVALUATE if evaluate else TRAIN
    command = [sys.executable, str(tool), "--cfg-path", str(cfg), "--options", *options]
    result_file = out_dir / "result.json"
    if result_file.is_file():
        done = json.loads(result_file.read_text())
        if done["command"][1:] != command[1:]:  # the interpreter may differ
            raise ValueError(
                f"{result_file}: a result of another command ({' '.join(done['command'][1:])}); "
                "give another --out, or delete it to run again"
            )
        return done
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.setdefault("OMP_NUM_THREADS", "1")
    start = time.time()
    with open(out_dir / "stdout.txt", "w") as out, open(out_dir / "stderr.txt", "w") as err:
        done = subprocess.run(command, stdout=out, stderr=err, env=env, cwd=REPO)
    printed, log = (out_dir / "stdout.txt").read_text(), (out_dir / "stderr.txt").read_text()
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}):\n{log[-3000:]}")
    test = json.loads(printed.strip().splitlines()[-1])["test"]
    result = {
        "command": command,
        "threads": env["OMP_NUM_THREADS"],
        "wall_seconds": round(time.time() - start, 1),
        # LAVIS prints the epoch times and logs the starts
        **({"train_seconds": 0.0, "steps": 0} if evaluate else training_compute(printed + log)),
        "metrics": test.get("test", {}),
    }
    result_file.write_text(json.dumps(result, indent=1))
    return result


def prepare(args) -> tuple[dict, dict]:
    """The dataset (written when ``--data`` holds none) and the derived dictionary with
    its report (kept when both files exist)."""
    data = args.data
    if not (data / "dataset.json").is_file():
        subprocess.run([sys.executable, str(DATA_TOOL), str(data)], check=True, cwd=REPO)
    dataset = json.loads((data / "dataset.json").read_text())
    report_file = args.out / "dictionary.json"
    if not (report_file.is_file() and (data / DERIVED).is_file()):
        command = [
            sys.executable,
            str(DICTIONARY_TOOL),
            str(data / "annotations" / "train.json"),
            "--out",
            str(data / DERIVED),
            "--reference",
            str(data / "entities.txt"),
            *args.dictionary_flags,
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=REPO)
        report = {"command": command, **json.loads(done.stdout)}
        write_results(args.out, report, json_name="dictionary.json")
    return dataset, json.loads(report_file.read_text())


def fine_tune_options(run: str, seed: int, args, checkpoint: Path) -> tuple[Path, list[str]]:
    config, overrides, _ = RUNS[run]
    return config, [
        *data_options(args.data),
        f"model.pretrained={checkpoint}",
        f"run.seed={seed}",
        f"run.max_epoch={args.epochs}",
        f"run.output_dir={args.out / 'runs' / f'{run}-s{seed}'}",
        "run.job_id=run",
        *(o.format(data=args.data) for o in overrides),
        *args.options,
    ]


def row_records(runs: dict) -> dict:
    """``{row: {seed: record}}``: every row of every finished run, its metrics read under
    the row's prefix, with the run's compute."""
    rows = {}
    for (run, seed), result in runs.items():
        for row, prefix in RUNS[run][2]:
            metrics = {m: result["metrics"][f"{prefix}{m}"] for m in METRICS}
            rows.setdefault(row, {})[seed] = {
                "metrics": metrics,
                "train_seconds": result["train_seconds"],
                "steps": result["steps"],
            }
    return rows


def stage_gains(rows: dict, seeds: list[int]) -> list[dict]:
    """For each re-rank stage and its first stage (both rows of one model per seed): the
    mean-recall difference, in how many seeds it is positive, and whether it exceeds the
    seed spread (larger than the two rows' standard deviations added; None with one seed)."""
    gains = []
    for second, first in STAGES:
        if second not in rows or first not in rows:
            continue
        common = [s for s in seeds if s in rows[second] and s in rows[first]]
        if not common:
            continue
        after = [rows[second][s]["metrics"]["r_mean"] for s in common]
        before = [rows[first][s]["metrics"]["r_mean"] for s in common]
        (after_mean, after_sd), (before_mean, before_sd) = mean_std(after), mean_std(before)
        diff = after_mean - before_mean
        improved = sum(a > b for a, b in zip(after, before, strict=True))
        gains.append(
            {
                "stage": second,
                "over": first,
                "r_mean gain": round(diff, 2),
                "seeds improved": f"{improved} of {len(common)}",
                "spread (sd + sd)": round(after_sd + before_sd, 2),
                # a spread needs two seeds
                "beyond spread": abs(diff) > after_sd + before_sd if len(common) > 1 else None,
            }
        )
    return gains


def fair_table(rows: dict, seeds: list[int], pretrain: dict, dataset: dict, zero_shot: dict) -> str:
    """Markdown: one line per row (mean ± sd over ``seeds``), its training seconds and
    steps; the stage gains under it; a note on what the numbers are, with the pre-trained
    ALBEF's own test mean recall (``zero_shot``: its metrics before fine-tuning)."""
    header = ["model", *HEADERS, "mean recall", "fine-tune train s", "steps"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row, per_seed in rows.items():
        mine = [per_seed[s] for s in seeds if s in per_seed]
        if not mine:
            continue
        cells = [summarise([r["metrics"][m] for r in mine]) for m in METRICS]
        cells.append(summarise([r["train_seconds"] for r in mine], digits=0))
        cells.append(summarise([r["steps"] for r in mine], digits=0))
        lines.append("| " + " | ".join([row, *cells]) + " |")
    gains = stage_gains(rows, seeds)
    if gains:
        lines += ["", "| re-rank stage | over | r_mean gain | seeds improved | spread | beyond |"]
        lines.append("|---|---|---|---|---|---|")
        lines += [
            f"| {g['stage']} | {g['over']} | {g['r_mean gain']:+.1f} | {g['seeds improved']} | "
            f"{g['spread (sd + sd)']:.1f} | {BEYOND[g['beyond spread']]} |"
            for g in gains
        ]
    note = (
        f"\n\n{len(seeds)} seeds ({', '.join(map(str, seeds))}) of fine-tuning from one "
        f"shared pre-training (LAVIS's albef_pretrain, {pretrain['epochs']} epochs, "
        f"{pretrain['steps']} steps, {pretrain['train_seconds']:.0f} s of training; before "
        f"fine-tuning it scores {zero_shot['itc_r_mean']:.1f} mean recall by ITC and "
        f"{zero_shot['r_mean']:.1f} with the ITM re-rank). Test: "
        f"{dataset['splits']['test']} images, {dataset['captions']['test']} captions; recall "
        "in percent, mean ± sample standard deviation over seeds. Rows of one run share its "
        "training seconds and steps.\n"
    )
    return "\n".join(lines) + note


def benchmark_entry(rows: dict, seeds: list[int], table: str, command: str) -> dict:
    """The table as a ``docs/benchmarks/results/bagformer.json`` entry: cells
    ``[mean, std]`` over seeds; the stage gains in its note and under ``stage_gains``."""
    pair = {"format": "{:.1f} ± {:.1f}"}
    columns = ["model", *({"name": h, **pair} for h in HEADERS), {"name": "mean recall", **pair}]
    columns += [
        {"name": "fine-tune train s", "format": "{:.0f} ± {:.0f}"},
        {"name": "steps", "format": "{:.0f} ± {:.0f}"},
    ]
    out_rows = []
    for row, per_seed in rows.items():
        mine = [per_seed[s] for s in seeds if s in per_seed]
        if mine:
            cells = [list(mean_std([r["metrics"][m] for r in mine])) for m in METRICS]
            cells.append(list(mean_std([r["train_seconds"] for r in mine])))
            cells.append(list(mean_std([r["steps"] for r in mine])))
            out_rows.append([row, *cells])
    gains = "; ".join(
        f"{g['stage']} over {g['over']}: {g['r_mean gain']:+.1f} mean recall, better in "
        f"{g['seeds improved']} seeds, spread {g['spread (sd + sd)']:.1f} (beyond it: "
        f"{BEYOND[g['beyond spread']]})"
        for g in stage_gains(rows, seeds)
    )
    note = table.rsplit("\n\n", 1)[1].strip() + (f" Re-rank stages: {gains}." if gains else "")
    return {"command": command, "columns": columns, "rows": out_rows, "note": note}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=Path("data/image_text"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--jobs", type=int, default=1, help="fine-tuning runs at once")
    parser.add_argument("--pretrain-epochs", type=int, default=30)
    parser.add_argument("--pretrain-seed", type=int, default=42)
    parser.add_argument("--epochs", type=int, default=10, help="fine-tuning epochs, every run")
    parser.add_argument("--runs", nargs="+", default=list(RUNS), choices=list(RUNS))
    parser.add_argument(
        "--dictionary-flags",
        type=shlex.split,
        default=[],
        help="flags of tools/data/lavis/bagformer_dictionary.py, one string "
        "(e.g. --dictionary-flags='--min-count 10')",
    )
    parser.add_argument("--options", nargs="*", default=[], help="overrides, every fine-tuning")
    parser.add_argument("--pretrain-options", nargs="*", default=[], help="pre-training overrides")
    parser.add_argument(
        "--pretrained-from",
        type=Path,
        default=None,
        help="an earlier --out: fine-tune from its pre-training (and reuse its test of the "
        "pre-trained ALBEF) instead of pre-training again",
    )
    args = parser.parse_args(argv)
    args.out, args.data = args.out.resolve(), args.data.resolve()
    if args.pretrained_from is not None:
        args.pretrained_from = args.pretrained_from.resolve()
        for needed in ("pretrain/result.json", "zero_shot/result.json"):
            if not (args.pretrained_from / needed).is_file():
                raise FileNotFoundError(
                    f"--pretrained-from {args.pretrained_from}: no {needed} (an earlier --out "
                    "of this tool whose pre-training and its test finished)"
                )
    args.out.mkdir(parents=True, exist_ok=True)
    dataset, dictionary = prepare(args)
    print(
        f"dictionary: {len(dictionary['phrases'])} phrases from the training captions, "
        f"precision {dictionary['reference']['precision']:.2f} and recall "
        f"{dictionary['reference']['recall']:.2f} against the generator's phrase list",
        flush=True,
    )
    pretrain_dir = (args.pretrained_from or args.out) / "pretrain"
    pretrain = train(
        PRETRAIN,
        [
            *data_options(args.data, "embedded_image_text_pretrain"),
            f"run.seed={args.pretrain_seed}",
            f"run.max_epoch={args.pretrain_epochs}",
            f"run.output_dir={pretrain_dir}",
            "run.job_id=pretrain",
            *args.pretrain_options,
        ],
        pretrain_dir,
    )
    checkpoint = pretrain_dir / "pretrain" / "checkpoint_latest.pth"
    print(
        f"pre-training: {pretrain['steps']} steps, {pretrain['train_seconds']:.0f} s -> "
        f"{checkpoint}",
        flush=True,
    )
    # the pre-trained ALBEF before any fine-tuning: has the shared start learned to match?
    zero_shot_dir = args.out / "zero_shot"
    if args.pretrained_from is not None:
        zero_shot_dir = args.pretrained_from / "zero_shot"  # its own test, its own options
        zero_shot = json.loads((zero_shot_dir / "result.json").read_text())["metrics"]
    else:
        zero_shot = train(
            ALBEF,
            [
                *data_options(args.data),
                f"model.pretrained={checkpoint}",
                f"run.output_dir={zero_shot_dir}",
                "run.job_id=test",
                *args.options,  # the fine-tuning's evaluation settings (k_test ...)
            ],
            zero_shot_dir,
            evaluate=True,
        )["metrics"]
    print(
        f"pre-trained ALBEF, no fine-tuning: mean recall {zero_shot['itc_r_mean']:.1f} (ITC), "
        f"{zero_shot['r_mean']:.1f} (ITM re-rank)",
        flush=True,
    )
    runs, lock = {}, threading.Lock()
    machine = machine_stamp()
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}

    def one(job):
        run, seed = job
        config, options = fine_tune_options(run, seed, args, checkpoint)
        result = train(config, options, args.out / "runs" / f"{run}-s{seed}")
        with lock:
            runs[job] = result
            print(
                f"{run} seed {seed}: mean recall {result['metrics']['r_mean']:.1f}, "
                f"{result['steps']} steps, {result['train_seconds']:.0f} s",
                flush=True,
            )
            write_results(
                args.out,
                {
                    "dataset": dataset,
                    "dictionary": dictionary,
                    "pretrain": pretrain,
                    "zero_shot": zero_shot,
                    "args": settings,
                    "machine": machine,
                    "runs": [{"run": r, "seed": s, **res} for (r, s), res in runs.items()],
                },
            )

    jobs = [(run, seed) for seed in args.seeds for run in args.runs]  # seed-major
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        list(pool.map(one, jobs))
    ordered = {job: runs[job] for job in jobs}
    rows = row_records(ordered)
    table = fair_table(rows, args.seeds, pretrain, dataset, zero_shot)
    given = sys.argv[1:] if argv is None else [str(a) for a in argv]
    command = " ".join(["python", "tools/experiments/bagformer/bagformer_fair_baseline.py", *given])
    write_results(args.out, markdown=table, markdown_name="table.md")
    entry = benchmark_entry(rows, args.seeds, table, command)
    entry["stage_gains"] = stage_gains(rows, args.seeds)
    entry["pretrain"] = {k: pretrain[k] for k in ("epochs", "steps", "train_seconds")}
    entry["zero_shot"] = {"itc_r_mean": zero_shot["itc_r_mean"], "r_mean": zero_shot["r_mean"]}
    write_results(args.out, entry, json_name="table.json")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
