"""UPSR beside SASRec, BERT4Rec, Pop and ItemKNN on ML-100K (same split and seed), each row
with its shuffled-history control, and zero-shot.

    python tools/experiments/upsr/upsr_compare.py --out runs/upsr-compare  # CPU-sized slice
    python tools/experiments/upsr/upsr_compare.py --users all --last all --no-zero-shot \
        --upsr-config configs/recbole/upsr_ml100k_cpu.yaml --out runs/upsr-full  # all of ML-100K

Writes results.json (every number and the settings, rewritten after each row) and
report.md in --out. ``--users``/``--last`` ``all``: every user / interaction (no slice);
``--max-item-list-length`` is RecBole's MAX_ITEM_LIST_LENGTH for every model. See
recbole_ext/compare.py.
"""

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from recbole_ext.compare import (
    METRICS,
    CompareSettings,
    run_comparison,
    summarise,
    with_control_columns,
)

from tabulate import tabulate


def _int_or_all(value: str) -> int | None:
    """``all`` (no limit) or a positive integer."""
    if value == "all":
        return None
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected 'all' or a positive integer, got {value}")
    return number


def main(argv=None) -> int:
    defaults = CompareSettings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=defaults.models)
    parser.add_argument("--seeds", nargs="+", type=int, default=defaults.seeds)
    parser.add_argument("--upsr-seeds", nargs="+", type=int, default=None)
    parser.add_argument(
        "--upsr-config",
        nargs="+",
        default=None,
        metavar="YAML",
        help="RecBole yaml files of UPSR keys; a later file wins (e.g. a base and an ablation)",
    )
    for f in fields(CompareSettings):
        if f.name in ("models", "zero_shot", "seeds", "upsr_seeds", "test_saved", "upsr_config"):
            continue
        if f.name in ("users", "last", "encoder_layers"):
            kind = _int_or_all
        elif f.name in ("backbone", "target_domain", "baseline_config", "label"):
            kind = str
        else:
            kind = int
        parser.add_argument(
            f"--{f.name.replace('_', '-')}", type=kind, default=getattr(defaults, f.name)
        )
    parser.add_argument("--no-zero-shot", action="store_true")
    parser.add_argument(
        "--test-saved",
        action="store_true",
        help="test the checkpoint each run folder of --out holds (a run stopped early)",
    )
    parser.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="no run: one report from the results.json of earlier --out folders (e.g. the "
        "baselines and UPSR run as separate processes), written to --out",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.merge:
        results = merge(args.merge)
    else:
        settings = CompareSettings(
            **{
                f.name: getattr(args, f.name)
                for f in fields(CompareSettings)
                if f.name != "zero_shot"
            },
            zero_shot=not args.no_zero_shot,
        )
        results = run_comparison(settings, args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.merge:
        (args.out / "results.json").write_text(json.dumps(results, indent=1))
    lines = ["# UPSR comparison\n"]
    for run in results.get("merged_from", [results]):
        lines.append(f"Settings: `{json.dumps(run['settings'])}`; data: {run['data']}\n")
    if results["supervised"]:
        lines += [
            "## mean ± sample standard deviation over seeds\n",
            tabulate(_summary_rows(results["supervised"]), headers="keys", tablefmt="github"),
            "",
        ]
        lines += [
            "A model *ignores the history* when its NDCG@10 is not above its shuffled-history "
            "control (each user's held-out item ranked with another user's score row, "
            "5 seeded shuffles) by more than twice the shuffles' spread in every seed. "
            "Pop and ItemKNN are RecBole's own models scored on the same sequential test "
            "loader; Pop ignores the history by construction.\n",
        ]
    for part in ("supervised", "zero_shot"):
        if results[part]:
            rows = [with_control_columns(row) for row in results[part]]
            lines += [
                f"## {part}\n",
                tabulate(rows, headers="keys", tablefmt="github", floatfmt=".4f"),
                "",
            ]
    (args.out / "report.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


def merge(folders: list[Path]) -> dict:
    """The rows of several results.json; refuses runs on different data."""
    runs = []
    for folder in folders:
        path = folder / "results.json"
        if not path.exists():
            raise FileNotFoundError(f"--merge: {path} does not exist")
        runs.append(json.loads(path.read_text()))
    data = {json.dumps(r["data"], sort_keys=True) for r in runs}
    if len(data) > 1:
        raise ValueError(f"--merge: the runs used different data: {sorted(data)}")
    return {
        "merged_from": [{"settings": r["settings"], "data": r["data"]} for r in runs],
        "supervised": [row for r in runs for row in r["supervised"]],
        "zero_shot": [row for r in runs for row in r["zero_shot"]],
    }


def _summary_rows(rows: list[dict]) -> list[dict]:
    table = []
    for summary in summarise(rows):
        row = {"model": summary["model"], "seeds": len(summary["seeds"])}
        for metric in METRICS:
            value = summary[metric]
            row[metric] = f"{value['mean']:.4f} ± {value['std']:.4f}"
        control = summary.get("control")
        if control:
            value = control["control_ndcg@10"]
            row["control ndcg@10"] = f"{value['mean']:.4f} ± {value['std']:.4f}"
            row["own row better"] = f"{control['own_row_better_share']:.2f}"
            row["row corr"] = f"{control['row_correlation']:.3f}"
            row["uses history"] = (
                "yes"
                if all(control["passes"])
                else "no (flagged)"
                if not any(control["passes"])
                else "in some seeds"
            )
        row["epochs"] = summary["epochs"]
        for key in ("training_rows", "train_seconds", "test_seconds"):
            row[key] = None if summary[key] is None else round(summary[key], 1)
        table.append(row)
    return table


if __name__ == "__main__":
    sys.exit(main())
