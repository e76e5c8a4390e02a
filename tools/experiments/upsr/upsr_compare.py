"""UPSR beside SASRec, BERT4Rec, Pop and ItemKNN on ML-100K (same split and seed), each row
with its shuffled-history control, and zero-shot.

    python tools/experiments/upsr/upsr_compare.py --out runs/upsr-compare  # CPU-sized slice
    python tools/experiments/upsr/upsr_compare.py --users all --last all --no-zero-shot \
        --upsr-config configs/recbole/upsr_ml100k_cpu.yaml --out runs/upsr-full  # all of ML-100K
    python tools/experiments/upsr/upsr_compare.py --merge runs/a runs/b --out runs/table
    python tools/experiments/upsr/upsr_compare.py --rescore runs/a --cold-threshold 10 \
        --out runs/a-cold10                                   # no training: saved ranks only

Writes in --out: results.json (every number and the settings, rewritten after each row),
report.md, table.json (the report's tables in the docs/benchmarks/results format, to paste
under "tables") and, when UPSR and SASRec rows validated during training, curve.png
(validation NDCG@10 against cumulative training seconds). ``--users``/``--last`` ``all``:
every user / interaction (no slice); ``--max-item-list-length`` is RecBole's
MAX_ITEM_LIST_LENGTH for every model.

Every row keeps, per test user, the held-out item, its training interactions and its rank
with the user's own score row and with the control's borrowed rows, so the report scores
the cold-item subset (held-out items with at most ``--cold-threshold`` training
interactions) and ``--merge`` / ``--rescore`` rescore any earlier run without training.
See recbole_ext/compare.py.
"""

import argparse
import json
import shlex
import sys
from dataclasses import fields
from pathlib import Path

from recbole_ext.compare import (
    ANCHORS,
    COLD_ITEM_INTERACTIONS,
    METRICS,
    CompareSettings,
    at_equal_training_time,
    cold_items,
    epoch_seconds_total,
    equal_time_caveats,
    run_comparison,
    summarise,
    validation_curve,
    with_control_columns,
)

from tabulate import tabulate

from plugins.benchmarking import mean_std

TOOL = "tools/experiments/upsr/upsr_compare.py"


def _int_or_all(value: str) -> int | None:
    """``all`` (no limit) or a positive integer."""
    if value == "all":
        return None
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected 'all' or a positive integer, got {value}")
    return number


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
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
    zero_shot = parser.add_mutually_exclusive_group()
    zero_shot.add_argument("--no-zero-shot", action="store_true")
    zero_shot.add_argument(
        "--zero-shot-only",
        action="store_true",
        help="only the zero-shot part (no supervised rows; --models is ignored)",
    )
    parser.add_argument(
        "--test-saved",
        action="store_true",
        help="test the checkpoint each run folder of --out holds (a run stopped early)",
    )
    parser.add_argument(
        "--cold-threshold",
        type=int,
        default=COLD_ITEM_INTERACTIONS,
        help="a test target is a cold item when it has at most this many training interactions",
    )
    saved = parser.add_mutually_exclusive_group()
    saved.add_argument(
        "--merge",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="no run: one report from the results.json of earlier --out folders (e.g. the "
        "baselines and UPSR run as separate processes), written to --out; rows saved without "
        "per-user ranks are left out of the cold-item table",
    )
    saved.add_argument(
        "--rescore",
        nargs="+",
        type=Path,
        metavar="DIR",
        help="as --merge, but every row must have its per-user ranks (an error otherwise): "
        "re-scores earlier runs, e.g. at another --cold-threshold, without training",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    if args.cold_threshold < 0:
        parser.error(f"--cold-threshold: expected an integer >= 0, got {args.cold_threshold}")
    command = shlex.join(["python", TOOL, *map(str, argv)])
    if args.merge or args.rescore:
        results = merge(args.merge or args.rescore, need_ranks=bool(args.rescore))
        results["commands"].append(command)
    else:
        settings = CompareSettings(
            **{
                f.name: getattr(args, f.name)
                for f in fields(CompareSettings)
                if f.name not in ("zero_shot", "models")
            },
            models=[] if args.zero_shot_only else args.models,
            zero_shot=not args.no_zero_shot,
        )
        results = run_comparison(settings, args.out)
        results["commands"] = [command]
    report = write_report(results, args.out, args.cold_threshold)
    print(report)
    return 0


def merge(folders: list[Path], need_ranks: bool = False) -> dict:
    """The rows of several results.json; refuses runs on different data, and with
    ``need_ranks`` a row saved without its per-user ranks (runs before they were kept)."""
    runs = []
    for folder in folders:
        path = folder / "results.json"
        if not path.exists():
            raise FileNotFoundError(f"--merge: {path} does not exist")
        run = json.loads(path.read_text())
        for part in ("supervised", "zero_shot"):
            for row in run[part]:
                _curve_from_run_folder(row)
                if "jobs" not in row and "jobs" in run.get("settings", {}):
                    row["jobs"] = run["settings"]["jobs"]  # saved before rows recorded it
                if need_ranks and not row.get("per_user") and row.get("control"):
                    raise ValueError(
                        f"--rescore: {path}: row {row_name(row)!r} ({part}) has no per-user "
                        "ranks: it was run before the comparison kept them; run it again to "
                        "score subsets such as the cold items"
                    )
        runs.append(run)
    data = {json.dumps(r["data"], sort_keys=True) for r in runs}
    if len(data) > 1:
        raise ValueError(f"--merge: the runs used different data: {sorted(data)}")
    return {
        "merged_from": [
            {"folder": str(folder), **{k: r[k] for k in ("settings", "data", "measured") if k in r}}
            for folder, r in zip(folders, runs, strict=True)
        ],
        "commands": [c for r in runs for c in r.get("commands", [])],
        "data": runs[0]["data"],
        "zero_shot_data": next((r["zero_shot_data"] for r in runs if "zero_shot_data" in r), None),
        "supervised": [row for r in runs for row in r["supervised"]],
        "zero_shot": [row for r in runs for row in r["zero_shot"]],
    }


def _curve_from_run_folder(row: dict) -> None:
    """A row saved before rows kept their curve: read it from its run folder's
    progress.json (beside the checkpoint's folder), when that is still there."""
    if "curve" in row or not row.get("checkpoint"):
        return
    progress = Path(row["checkpoint"]).parent.parent / "progress.json"
    if progress.exists():
        row["curve"] = json.loads(progress.read_text())


def row_name(row: dict, seeds: bool = False) -> str:
    """A row's model, label and (with ``seeds``) seed, as the report names it."""
    name = row["model"] + (f" ({row['label']})" if row.get("label") else "")
    return name + (f" seed {row['seed']}" if seeds and "seed" in row else "")


def write_report(results: dict, out: Path, cold_threshold: int) -> str:
    """report.md, table.json, curve.png (when there are curves) and results.json (with the
    cold-item rows and the curve comparison added) in ``out``; returns the report."""
    out.mkdir(parents=True, exist_ok=True)
    several_seeds = len({r.get("seed") for r in results["supervised"]}) > 1
    cold = {
        part: cold_item_rows(results[part], cold_threshold) for part in ("supervised", "zero_shot")
    }
    results["cold_items"] = {"threshold": cold_threshold, **cold}
    curves = {
        row_name(row, several_seeds): validation_curve(row)
        for row in results["supervised"]
        if row["model"] not in ANCHORS
    }
    curves = {name: points for name, points in curves.items() if points}
    results["curves"] = curves
    results["equal_training_time"] = equal_time_rows(results["supervised"], several_seeds)
    tables = {}
    if several_seeds:
        tables["over-seeds"] = over_seeds_table(results)
    if results["supervised"]:
        tables["recipe"] = rows_table(results, "supervised", several_seeds)
    if results["zero_shot"]:
        tables["zero-shot"] = rows_table(results, "zero_shot", False)
    if cold["supervised"] or cold["zero_shot"]:
        tables["cold-items"] = cold_table(results, cold_threshold)
    if len({c["seed"] for c in cold["supervised"] if c.get("users")}) > 1:
        tables["cold-items-over-seeds"] = cold_seed_table(results, cold_threshold)
    if results["equal_training_time"]:
        tables["equal-training-time"] = equal_time_table(results)
    (out / "table.json").write_text(json.dumps(tables, indent=1))
    (out / "results.json").write_text(json.dumps(results, indent=1))
    lines = ["# UPSR comparison\n"]
    for run in results.get("merged_from", [results]):
        lines.append(f"Settings: `{json.dumps(run['settings'])}`; data: {run['data']}\n")
    lines += [f"Command: `{c}`\n" for c in results.get("commands", [])]
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
    for table_id, table in tables.items():
        lines += [f"## {table_id}\n", table["caption"], "", _markdown(table), ""]
        if table.get("note"):
            lines += [table["note"], ""]
    if curves:
        plot_curves(curves, out / "curve.png")
        lines += ["![validation NDCG@10 against training seconds](curve.png)", ""]
    report = "\n".join(lines)
    (out / "report.md").write_text(report)
    return report


def cold_item_rows(rows: list[dict], threshold: int) -> list[dict]:
    """The cold-item subset of every row that has per-user ranks (``missing`` for a row saved
    before they were kept; rows without a control, such as the random-ranking reference,
    have none)."""
    several_seeds = len({r.get("seed") for r in rows}) > 1
    out = []
    for row in rows:
        name = {
            "row": row_name(row, several_seeds),
            "group": row_name(row),
            "seed": row.get("seed"),
        }
        if row.get("per_user"):
            out.append({**name, **cold_items(row["per_user"], threshold)})
        elif row.get("control"):
            out.append({**name, "missing": "no per-user ranks (run before they were kept)"})
    return out


def equal_time_rows(rows: list[dict], several_seeds: bool) -> list[dict]:
    """Each UPSR row's validation curve against SASRec's of the same seed (every SASRec row
    when none shares the seed): the best validation NDCG@10 each reached within the other's
    training seconds at its last validation, each row's seconds to its last validation and
    over all its epochs, what it ran with (validation users, threads, jobs, load), and
    whether the two compare (``caveats``: why not)."""
    upsr = [r for r in rows if r["model"] == "UPSR" and validation_curve(r)]
    sasrec = [r for r in rows if r["model"] == "SASRec" and validation_curve(r)]
    out = []
    for a in upsr:
        same_seed = [b for b in sasrec if b.get("seed") == a.get("seed")]
        for b in same_seed or sasrec:
            out.append(
                {
                    "a": row_name(a, several_seeds),
                    "b": row_name(b, several_seeds),
                    "caveats": equal_time_caveats(a, b),
                    "validation_users": [_validated(a), _validated(b)],
                    "threads": [_recorded(a, "threads"), _recorded(b, "threads")],
                    "jobs": [_recorded(a, "jobs"), _recorded(b, "jobs")],
                    "load": [_load(a), _load(b)],
                    "a_epoch_seconds_total": epoch_seconds_total(a),
                    "b_epoch_seconds_total": epoch_seconds_total(b),
                    **at_equal_training_time(validation_curve(a), validation_curve(b)),
                }
            )
    return out


def _validated(row: dict) -> str:
    """How many users a row validated on (curves compare fairly on the same seeded users)."""
    if "valid_users" not in row:
        return "not recorded"
    return "all" if row["valid_users"] is None else str(row["valid_users"])


def _recorded(row: dict, key: str) -> str:
    return str(row[key]) if row.get(key) is not None else "not recorded"


def _load(row: dict) -> str:
    """The machine's 1-minute load average when a row started and ended its run."""
    start, end = row.get("load_start"), row.get("load_end")
    if start is None or end is None:
        return "not recorded"
    return f"{start:.1f} to {end:.1f}"


def plot_curves(curves: dict[str, list], path: Path) -> None:
    """Validation NDCG@10 against cumulative training seconds, one line a row; the rows of
    one model (its seeds) share a colour."""
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5))
    models = list(dict.fromkeys(name.split(" seed ")[0] for name in curves))
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for name, points in curves.items():
        seconds, scores = zip(*points, strict=True)
        colour = palette[models.index(name.split(" seed ")[0]) % len(palette)]
        axes.plot(seconds, scores, marker="o", color=colour, label=name)
    axes.set_xlabel("cumulative training seconds (validation not counted)")
    axes.set_ylabel("validation NDCG@10")
    axes.grid(alpha=0.3)
    axes.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _training_text(row: dict) -> str:
    """What a row trained: epochs x prefixes per user (training rows), best validated epoch."""
    if row["model"] in ANCHORS or row["model"].startswith(ANCHORS):
        return "one pass over the training interactions"
    epochs, rows = row.get("epochs"), row.get("training_rows")
    if epochs is None:  # a computed reference
        return "none"
    prefixes = row.get("prefixes_per_user")
    if "prefixes_per_user" not in row:  # saved before the comparison recorded it
        text = f"{epochs} epoch{'s' if epochs != 1 else ''} ({rows:,} rows)"
    elif prefixes is None:
        text = f"{epochs} x every prefix ({rows:,} rows)"
    else:
        text = f"{epochs} x {prefixes} prefixes per user ({rows:,} rows)"
    points = validation_curve(row)
    if len(points) > 1:
        scores = [score for _, score in points]
        best = (row.get("curve") or {}).get("valid_epochs") or range(1, len(points) + 1)
        text += f", best validated epoch {list(best)[scores.index(max(scores))]}"
    if row.get("stopped_before_fit_returned"):
        text += ", stopped; saved checkpoint tested"
    if "pretrain_curve" in row:  # zero-shot: all its training is the pre-training
        text = "pre-training: " + text
    return text


def _measured(results: dict) -> dict:
    runs = results.get("merged_from", [results])
    stamps = [r["measured"] for r in runs if r.get("measured")]
    threads = sorted({str(r.get("threads")) for r in results["supervised"] if r.get("threads")})
    measured = {"threads": ", ".join(threads) or "not recorded"}
    if stamps:
        measured["date"] = ", ".join(dict.fromkeys(s["started_utc"][:10] for s in stamps))
        measured["commit"] = ", ".join(dict.fromkeys(str(s["commit"])[:7] for s in stamps))
    return measured


def _caption(results: dict, what: str) -> str:
    data = results["data"]
    size = ", ".join(f"{data[k]} {k}" for k in ("users", "items") if k in data)
    tested = sorted(
        {len(r["per_user"]["user"]) for r in results["supervised"] if r.get("per_user")}
    )
    users = f", {' / '.join(map(str, tested))} test users" if tested else ""
    return (
        f"{what} on {data.get('dataset', 'the data')} ({size}{users}), "
        "leave-one-out by time, full ranking through RecBole's Trainer. "
        "Hits, NDCG and the control put a held-out item tied with t other items at its "
        "mean rank (1 + the items above + t / 2) and score that one rank, which is not the "
        "expected hits or NDCG under a random tie-break: a row and its control are scored "
        "alike, but for heavily tied rows (Pop on the cold items) hits and NDCG differ from "
        "RecBole's, which breaks ties in its top-k order. The control ranks each user's "
        "held-out item with another user's score row (5 seeded shuffles)."
    )


def _train_seconds(row: dict) -> float | None:
    """A row's training seconds; for a run stopped before RecBole's fit returned, the sum of
    its recorded epochs' seconds (validation not counted)."""
    if row.get("train_seconds") is not None:
        return row["train_seconds"]
    epochs = (row.get("curve") or {}).get("epoch_seconds")
    return sum(epochs) if epochs else None


def rows_table(results: dict, part: str, several_seeds: bool) -> dict:
    """One row a result row of ``part`` (the recipe table of the supervised rows, or the
    zero-shot rows): training, hits@10, NDCG@10 (RecBole's), the control's NDCG@10 mean ±
    sd, own-row-better share, whether it uses the history, train and test seconds."""
    rows = []
    for row in results[part]:
        control = row.get("control") or {}
        rows.append(
            [
                row_name(row, several_seeds),
                _training_text(row),
                control.get("hits@10"),
                row["ndcg@10"],
                [control["control_ndcg@10"], control["control_ndcg@10_sd"]] if control else None,
                control.get("own_row_better_share"),
                ("yes" if control["passes"] else "no") if control else None,
                _train_seconds(row),
                row.get("test_seconds"),
            ]
        )
    data = results.get("zero_shot_data")
    if part == "zero_shot" and data:
        caption = (
            f"Zero-shot: UPSR pre-trained on {' + '.join(data['sources'])} and tested, without "
            f"training on it, on {data['target']['dataset']} ({data['target']['users']} users, "
            f"{data['target']['items']} items), beside SASRec and Pop trained on that target "
            "and the expected ranking of an ID model that never trained on its items (random)."
        )
    else:
        caption = _caption(results, "Each row" if part == "supervised" else "Zero-shot rows")
    return {
        "caption": caption,
        "measured": _measured(results),
        "command": results.get("commands", []),
        "columns": [
            "row",
            "training",
            "hits@10",
            {"name": "NDCG@10", "format": "{:.4f}"},
            {"name": "control NDCG@10", "format": "{:.4f} ± {:.4f}"},
            {"name": "own row better", "format": "{:.2f}"},
            "uses the history",
            {"name": "train s", "format": "{:,.0f}"},
            {"name": "test s", "format": "{:,.1f}"},
        ],
        "rows": rows,
    }


def over_seeds_table(results: dict) -> dict:
    """One row a model (and label) over its seeds: Recall and NDCG at 10 and 20 and the
    control's NDCG@10 as mean ± sample standard deviation, the own-row-better share and row
    correlation averaged, whether the control passes in every seed, the epochs of each seed,
    and mean train and test seconds."""
    rows = []
    for summary in summarise(results["supervised"]):
        control = summary.get("control")
        passes = control["passes"] if control else []
        rows.append(
            [
                summary["model"],
                len(summary["seeds"]),
                *[
                    [summary[m]["mean"], summary[m]["std"]]
                    for m in ("recall@10", "ndcg@10", "recall@20", "ndcg@20")
                ],
                [control["control_ndcg@10"]["mean"], control["control_ndcg@10"]["std"]]
                if control
                else None,
                control["own_row_better_share"] if control else None,
                control["row_correlation"] if control else None,
                (
                    "yes"
                    if all(passes)
                    else "no"
                    if not any(passes)
                    else f"{sum(passes)} of {len(passes)} seeds"
                )
                if control
                else None,
                ", ".join(str(e) for e in summary["epochs"]),
                summary["train_seconds"],
                summary["test_seconds"],
            ]
        )
    return {
        "caption": _caption(results, "Mean ± sample standard deviation over seeds of each row"),
        "measured": _measured(results),
        "command": results.get("commands", []),
        "columns": [
            "model",
            "seeds",
            *[
                {"name": name, "format": "{:.4f} ± {:.4f}"}
                for name in ("Recall@10", "NDCG@10", "Recall@20", "NDCG@20", "control NDCG@10")
            ],
            {"name": "own row better", "format": "{:.2f}"},
            {"name": "row correlation", "format": "{:.3f}"},
            "uses the history (every seed)",
            "epochs (per seed)",
            {"name": "train s (mean)", "format": "{:,.0f}"},
            {"name": "test s (mean)", "format": "{:,.1f}"},
        ],
        "rows": rows,
    }


def cold_table(results: dict, threshold: int) -> dict:
    """The cold-item subset of every row with per-user ranks, supervised then zero-shot."""
    rows = []
    for part, label in (("supervised", ""), ("zero_shot", " [zero-shot target]")):
        for cold in results["cold_items"][part]:
            if cold.get("users") == 0:  # no held-out item that cold: nothing to score
                rows.append([cold["row"] + label, 0, *[None] * 5])
            elif cold.get("users"):
                rows.append(
                    [
                        cold["row"] + label,
                        cold["users"],
                        cold["hits@10"],
                        cold["ndcg@10"],
                        [cold["control_ndcg@10"], cold["control_ndcg@10_sd"]],
                        cold["own_row_better_share"],
                        "yes" if cold["passes"] else "no",
                    ]
                )
    missing = [
        c["row"]
        for part in ("supervised", "zero_shot")
        for c in results["cold_items"][part]
        if c.get("missing")
    ]
    table = {
        "caption": _caption(
            results, f"Test users whose held-out item has at most {threshold} training interactions"
        ),
        "measured": _measured(results),
        "command": results.get("commands", []),
        "columns": [
            "row",
            "cold test users",
            "hits@10",
            {"name": "NDCG@10", "format": "{:.4f}"},
            {"name": "control NDCG@10", "format": "{:.4f} ± {:.4f}"},
            {"name": "own row better", "format": "{:.2f}"},
            "uses the history",
        ],
        "rows": rows,
    }
    if missing:
        table["note"] = (
            "No per-user ranks saved (run before they were kept): " + ", ".join(missing) + "."
        )
    return table


def cold_seed_table(results: dict, threshold: int) -> dict:
    """The supervised cold-item rows summarised over seeds, one row a model (and label)."""
    groups: dict[str, list[dict]] = {}
    for cold in results["cold_items"]["supervised"]:
        if cold.get("users"):
            groups.setdefault(cold["group"], []).append(cold)
    rows = []
    for name, runs in groups.items():
        passes = sum(c["passes"] for c in runs)
        rows.append(
            [
                name,
                len(runs),
                " / ".join(str(c["users"]) for c in runs),
                " / ".join(str(c["hits@10"]) for c in runs),
                list(mean_std([c["ndcg@10"] for c in runs])),
                list(mean_std([c["control_ndcg@10"] for c in runs])),
                sum(c["own_row_better_share"] for c in runs) / len(runs),
                "yes"
                if passes == len(runs)
                else "no"
                if not passes
                else f"{passes} of {len(runs)} seeds",
            ]
        )
    return {
        "caption": _caption(
            results,
            f"Test users whose held-out item has at most {threshold} training interactions, "
            "mean ± sample standard deviation over seeds",
        ),
        "measured": _measured(results),
        "command": results.get("commands", []),
        "columns": [
            "row",
            "seeds",
            "cold test users (per seed)",
            "hits@10 (per seed)",
            {"name": "NDCG@10", "format": "{:.4f} ± {:.4f}"},
            {"name": "control NDCG@10", "format": "{:.4f} ± {:.4f}"},
            {"name": "own row better", "format": "{:.2f}"},
            "uses the history",
        ],
        "rows": rows,
    }


def equal_time_table(results: dict) -> dict:
    return {
        "caption": _caption(
            results,
            "Validation NDCG@10 at equal training time (each row's best validated score "
            "within the other row's training seconds at its last validation; validation time "
            "not counted)",
        ),
        "measured": _measured(results),
        "command": results.get("commands", []),
        "columns": [
            "UPSR row",
            "SASRec row",
            "comparable",
            "validation users (UPSR / SASRec)",
            "threads (UPSR / SASRec)",
            "rows run at once (UPSR / SASRec)",
            "load average, start to end (UPSR / SASRec)",
            {"name": "UPSR train s (to last validation / all epochs)", "format": _SECONDS},
            {"name": "SASRec train s (to last validation / all epochs)", "format": _SECONDS},
            {"name": "UPSR best", "format": "{:.4f}"},
            {"name": "SASRec best", "format": "{:.4f}"},
            {"name": "UPSR within SASRec's seconds", "format": "{:.4f}"},
            {"name": "SASRec within UPSR's seconds", "format": "{:.4f}"},
        ],
        "rows": [
            [
                r["a"],
                r["b"],
                "no: " + "; ".join(r["caveats"]) if r["caveats"] else "yes",
                " / ".join(r["validation_users"]),
                " / ".join(r["threads"]),
                " / ".join(r["jobs"]),
                " / ".join(r["load"]),
                _seconds_cell(r["a_last_valid_seconds"], r["a_epoch_seconds_total"]),
                _seconds_cell(r["b_last_valid_seconds"], r["b_epoch_seconds_total"]),
                r["a_best"],
                r["b_best"],
                r["a_within_b_last_valid"],
                r["b_within_a_last_valid"],
            ]
            for r in results["equal_training_time"]
        ],
        "note": "An empty cell: that row had not validated yet at the other's last "
        "validation. Training seconds compare only between rows that validated on the same "
        "seeded users (the comparison's --valid-users; curve.yaml sets 100 for UPSR), ran "
        "with the same threads and with the same number of rows at once (--jobs: with more "
        "than one, rows train at the same time on shared cores); a pair that differs in any "
        "is marked not comparable, with the reason. The load average shows what else ran.",
    }


_SECONDS = "{:,.0f} / {:,.0f}"


def _seconds_cell(last_valid: float, total: float | None) -> list | str:
    """Seconds to the last validation and over all epochs, as one cell."""
    if total is None:
        return f"{last_valid:,.0f} / not recorded"
    return [last_valid, total]


def _markdown(table: dict) -> str:
    """A table of table.json as GitHub markdown, cells formatted as the docs tool does."""
    headers = [c if isinstance(c, str) else c["name"] for c in table["columns"]]
    formats = [None if isinstance(c, str) else c.get("format") for c in table["columns"]]
    body = []
    for row in table["rows"]:
        cells = []
        for cell, form in zip(row, formats, strict=True):
            if cell is None:
                cells.append("")
            elif form and isinstance(cell, list):
                cells.append(form.format(*cell))
            elif form and isinstance(cell, int | float):  # one number: the first field
                cells.append(form[: form.index("}") + 1].format(cell))
            else:
                cells.append(str(cell))
        body.append(cells)
    return tabulate(body, headers=headers, tablefmt="github", disable_numparse=True)


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
