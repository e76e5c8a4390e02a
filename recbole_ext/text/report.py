"""``plugzoo upsr-text``: the indicator report of UPSR's text adaptation for a dataset.

Prints the indicator table of every candidate construction (overall and per domain), the
construction each stage chose and why, the dataset's own ambiguities and what the chosen
constructions leave of them, and example texts; writes the same as ``report.md`` and
``report.json`` (with the full RecBole config) into ``--out``.

    plugzoo upsr-text --dataset ml-100k
    plugzoo upsr-text --dataset my-amazon --data-path data/ --config-file my_text.yaml
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
import unittest.mock
import warnings
from pathlib import Path

from recbole_ext.text.adaptation import TextAdaptation

from tabulate import tabulate

from plugins.paths import CONFIG_DIR
from plugins.report import jsonable

DEFAULT_CONFIG = CONFIG_DIR / "recbole" / "upsr_text.yaml"
# the dataset is loaded the way a sequential model sees it; the model is not built
DATASET_MODEL = "SASRec"


def load_config_and_dataset(dataset: str, config_files, config_dict=None):
    """A RecBole ``Config`` and ``Dataset`` for the text adaptation, quiet and in-memory."""
    import recbole_ext  # noqa: F401  (host fixes)

    from recbole.config import Config
    from recbole.data import create_dataset

    overrides = {"train_neg_sample_args": None, "save_dataset": False, **(config_dict or {})}
    # RecBole's Config also parses `--key=value` from sys.argv: give it none of ours
    with unittest.mock.patch.object(sys, "argv", sys.argv[:1]):
        config = Config(
            model=DATASET_MODEL,
            dataset=dataset,
            config_file_list=[str(f) for f in config_files],
            config_dict=overrides,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # RecBole 1.2.1's pandas notices
        return config, create_dataset(config)


def _f(value, digits=3):
    return "n/a" if value is None else f"{value:.{digits}f}"


def item_rows(report: dict, domain: str | None = None) -> list[dict]:
    rows = []
    for r in report["item_candidates"]:
        m = r["overall"] if domain is None else r["per_domain"][domain]
        noise, length = m["noise_ambiguity"], m["text_length"]
        row = {
            "construction": r["name"],
            "naturalness": _f(m["naturalness"]["score"]),
            "domain consistency": _f(m["domain_consistency"]),
            "informativeness": _f(m["informativeness"]["score"]),
            "noise & ambiguity": _f(noise["value"]),
            "tokens/item mean (p95)": f"{length['mean']:.1f} ({length['p95']:.0f})",
            "unique texts": _f(m["informativeness"]["unique_share"]),
            "colliding groups/items": f"{noise['collision_groups']}/{noise['ambiguous_items']}",
            "noisy items": noise["noisy_items"],
        }
        if domain is None:
            for stage, s in r["stages"].items():
                row[f"{stage} score"] = _f(s["score"]) + ("" if s["eligible"] else " (over budget)")
        rows.append(row)
    return rows


def history_rows(report: dict, stage: str) -> list[dict]:
    return [
        {
            "construction": h["name"],
            "naturalness": _f(h["indicators"]["naturalness"]["score"]),
            "domain consistency": _f(h["indicators"]["domain_consistency"]),
            "informativeness": _f(h["indicators"]["informativeness"]["score"]),
            "noise & ambiguity": _f(h["indicators"]["noise_ambiguity"]["value"]),
            "tokens/history mean (p95)": (
                f"{h['indicators']['text_length']['mean']:.0f} "
                f"({h['indicators']['text_length']['p95']:.0f})"
            ),
            "items kept": f"{h['indicators']['mean_items_kept']:.1f}",
            "truncated": _f(h["indicators"]["truncated_share"], 2),
            "score": _f(h["score"]) + ("" if h["eligible"] else " (over budget)"),
        }
        for h in report["history_candidates"][stage]
    ]


def ambiguity_rows(report: dict) -> list[dict]:
    """The raw title and the chosen constructions side by side on noise and ambiguity."""
    by_name = {r["name"]: r for r in report["item_candidates"]}
    first = report["item_candidates"][0]["name"]
    shown = {f"{first} (first candidate)": first}
    for stage, chosen in report["chosen"].items():
        shown[f"{chosen['item']} (chosen for {stage})"] = chosen["item"]
    rows = []
    for label, name in shown.items():
        noise = by_name[name]["overall"]["noise_ambiguity"]
        rows.append(
            {
                "construction": label,
                "groups of identical texts": noise["collision_groups"],
                "items in them": noise["ambiguous_items"],
                "items with noise left": noise["noisy_items"],
                "noise left": ", ".join(f"{k} {v}" for k, v in noise["noise_kinds"].items()) or "-",
            }
        )
    return rows


def render(report: dict) -> str:
    """The report as Markdown."""
    noise = report["dataset_noise"]
    lines = [
        f"# UPSR text adaptation: {report['dataset']}",
        "",
        f"{report['items']} items, {report['histories_measured']} user histories measured; "
        f"tokenizer `{report['tokenizer']}`, history budget {report['history_token_budget']} "
        f"tokens; domains: {', '.join(f'{d} ({n} items)' for d, n in report['domains'].items())}. "
        f"Measured in {report['seconds']} s.",
        "",
        "## The dataset's own noise and ambiguity",
        "",
        f"- {noise['repeated_titles']} repeated values of `{noise['title_field']}` "
        f"({noise['items_with_repeated_title']} items);",
        f"- {noise['identical_on_all_fields']} groups of items identical on every text field "
        f"(e.g. {'; '.join(' = '.join(g) for g in noise['identical_examples'][:2]) or '-'});",
    ]
    for kind, entry in noise["noise_values"].items():
        examples = ", ".join(repr(e) for e in entry["examples"])
        lines.append(f"- `{kind}`: {entry['items']} values, e.g. {examples};")
    lines += [
        "",
        "## Item constructions, overall",
        "",
        tabulate(item_rows(report), headers="keys", tablefmt="github"),
        "",
    ]
    for domain in report["domains"]:
        lines += [
            f"### Domain `{domain}`",
            "",
            tabulate(item_rows(report, domain), headers="keys", tablefmt="github"),
            "",
        ]
    for stage in report["chosen"]:
        lines += [
            f"## History constructions for {stage} (on its item texts)",
            "",
            tabulate(history_rows(report, stage), headers="keys", tablefmt="github"),
            "",
        ]
    lines += ["## Chosen per stage", ""]
    for stage, chosen in report["chosen"].items():
        policy = report["policy"][stage]
        weights = ", ".join(f"{k} {v}" for k, v in policy["weights"].items())
        lines.append(
            f"- **{stage}**: item `{chosen['item']}`, history `{chosen['history']}` "
            f"(weights {weights}; item budget {policy['max_item_tokens']} tokens at p95)"
        )
    lines += [
        "",
        "## What the chosen constructions leave of the ambiguity",
        "",
        tabulate(ambiguity_rows(report), headers="keys", tablefmt="github"),
        "",
        "## Example item texts",
        "",
        tabulate(report["examples"]["items"], headers="keys", tablefmt="github"),
        "",
        "## Example histories (first measured user)",
        "",
    ]
    for stage, chosen in report["chosen"].items():
        example = next(
            h["example"]
            for h in report["history_candidates"][stage]
            if h["name"] == chosen["history"]
        )
        lines += [f"- {stage}: `{example[:600]}{'...' if len(example) > 600 else ''}`"]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plugzoo upsr-text",
        description="Measure UPSR's text constructions on a RecBole dataset (five indicators, "
        "stage policy) and write report.md / report.json.",
    )
    parser.add_argument("--dataset", default="ml-100k", help="RecBole dataset name")
    parser.add_argument(
        "--config-file",
        action="append",
        type=Path,
        help=f"RecBole yaml (repeatable; default {DEFAULT_CONFIG.relative_to(CONFIG_DIR.parent)})",
    )
    parser.add_argument("--data-path", type=Path, help="folder holding <dataset>/ atomic files")
    parser.add_argument("--out", type=Path, help="output folder (default runs/upsr-text-<dataset>)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    overrides = {"data_path": str(args.data_path)} if args.data_path else {}
    config, dataset = load_config_and_dataset(
        args.dataset, args.config_file or [DEFAULT_CONFIG], overrides
    )
    report = TextAdaptation(config).evaluate(dataset)
    out = args.out or Path("runs") / f"upsr-text-{args.dataset}"
    out.mkdir(parents=True, exist_ok=True)
    markdown = render(report)
    (out / "report.md").write_text(markdown)
    payload = {"report": report, "config": dict(config.final_config_dict), "time": time.time()}
    (out / "report.json").write_text(json.dumps(jsonable(payload), indent=1, allow_nan=False))
    with contextlib.suppress(BrokenPipeError):
        print(markdown)
        print(f"upsr-text: wrote {out / 'report.md'} and {out / 'report.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
