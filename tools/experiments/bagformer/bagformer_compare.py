"""BagFormer beside its ablations on one config, over several seeds: each (interaction,
seed) is one run of tools/lavis_train.py (same data, split, init recipe and schedule), and
every score set of its test evaluation is tabulated with mean and spread.

    python tools/experiments/bagformer/bagformer_compare.py --out runs/bagformer-compare \
        [--cfg-path configs/lavis/bagformer/embedded.yaml] [--seeds 42 43 44] \
        [--interactions bagwise tokenwise cls_token] [--threads 1] [--options key=value ...]

Rows: <interaction>/<score set>; with cls_token, ``recall`` is the CLS-only dual encoder and
``merge`` the single-encoder path (ITM re-rank of the CLS top k_test, added to the CLS
score, as LAVIS's ALBEF re-ranks). Writes results.json (every run's metrics and command)
and report.md. A run whose result.json exists is not run again.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from tabulate import tabulate

from plugins.benchmarking import machine_stamp, mean_std, write_results

REPO = Path(__file__).resolve().parents[3]
METRICS = ("txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10", "r_mean")
SETS = {"merge": "", "recall": "recall_", "rank": "rank_", "cls": "cls_"}


def summarise(runs: dict) -> list[dict]:
    """``{(interaction, set): [metrics of each seed]}`` to rows of mean and spread
    (sample standard deviation; 0 with one seed)."""
    rows = []
    for (interaction, score_set), per_seed in runs.items():
        row = {"row": f"{interaction}/{score_set}", "seeds": len(per_seed)}
        for name in METRICS:
            row[name], row[f"{name}_sd"] = mean_std([m[name] for m in per_seed])
        rows.append(row)
    return rows


def differences(rows: list[dict], reference: str, metric: str = "r_mean") -> list[dict]:
    """Each row's ``metric`` minus the reference row's, and whether the difference exceeds
    the seed spread (larger than the two standard deviations added)."""
    ref = next(r for r in rows if r["row"] == reference)
    out = []
    for row in rows:
        if row["row"] == reference:
            continue
        diff = row[metric] - ref[metric]
        spread = row[f"{metric}_sd"] + ref[f"{metric}_sd"]
        out.append(
            {
                "row": row["row"],
                f"{metric} - {reference}": diff,
                "spread (sd + sd)": spread,
                "exceeds spread": abs(diff) > spread,
            }
        )
    return out


def run_one(cfg_path, interaction, seed, out_dir: Path, threads: int, options) -> dict:
    result_file = out_dir / "result.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    cmd = [
        sys.executable,
        str(REPO / "tools" / "lavis_train.py"),
        "--cfg-path",
        str(cfg_path),
        "--options",
        f"model.interaction={interaction}",
        f"run.seed={seed}",
        f"run.output_dir={out_dir}",
        "run.job_id=run",
        *options,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    (out_dir).mkdir(parents=True, exist_ok=True)
    (out_dir / "stderr.txt").write_text(done.stderr[-20000:])
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    metrics = json.loads(done.stdout.strip().splitlines()[-1])["test"]["test"]
    result = {"command": cmd, "threads": threads, "metrics": metrics}
    result_file.write_text(json.dumps(result, indent=1))
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cfg-path", default=str(REPO / "configs/lavis/bagformer/embedded.yaml"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 43, 44])
    parser.add_argument("--interactions", nargs="+", default=["bagwise", "tokenwise", "cls_token"])
    parser.add_argument("--threads", type=int, default=1, help="OMP_NUM_THREADS of each run")
    parser.add_argument("--options", nargs="*", default=[], help="overrides for every run")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    runs, results = {}, []
    for seed in args.seeds:  # seed-major: an interrupted comparison has whole seeds
        for interaction in args.interactions:
            result = run_one(
                args.cfg_path,
                interaction,
                seed,
                args.out / f"{interaction}_s{seed}",
                args.threads,
                args.options,
            )
            results.append({"interaction": interaction, "seed": seed, **result})
            for score_set, prefix in SETS.items():
                values = {m: result["metrics"][f"{prefix}{m}"] for m in METRICS}
                runs.setdefault((interaction, score_set), []).append(values)
    rows = summarise(runs)
    reference = f"{args.interactions[0]}/recall"
    diffs = differences(rows, reference)
    table = [
        {"row": r["row"], "seeds": r["seeds"]}
        | {m: f"{r[m]:.1f} ± {r[f'{m}_sd']:.1f}" for m in METRICS}
        for r in rows
    ]
    lines = [
        "# BagFormer comparison\n",
        f"Config: `{args.cfg_path}`, seeds {args.seeds}, options {args.options}, "
        f"OMP_NUM_THREADS={args.threads}\n",
        tabulate(table, headers="keys", tablefmt="github"),
        "",
        tabulate(diffs, headers="keys", tablefmt="github", floatfmt=".1f"),
        "",
    ]
    write_results(
        args.out,
        {"runs": results, "rows": rows, "differences": diffs, "machine": machine_stamp()},
        "\n".join(lines),
    )
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
