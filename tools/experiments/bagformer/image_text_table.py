"""Table of image-text retrieval runs over seeds: image->text and text->image R@1/5/10 and
mean recall, mean ± spread (sample std) of each run's TEST metrics.

    python tools/experiments/bagformer/image_text_table.py runs/lavis/albef_embedded/seed4{2,3,4} \
        --rows "ALBEF ITC (CLS-only dual encoder)=itc_" \
               "ALBEF ITM re-rank of the ITC top k_test=" \
        --out runs/lavis/albef_embedded

Each run folder is one written by ``tools/lavis_train.py`` (its ``log.txt``: the full config
as its first JSON block, then one JSON line per logged split; the test metrics of the best
epoch are the last ``{"test_<split>": {...}}`` line, ``--split`` names the split). A
row is ``label=prefix``: the image_text_retrieval task names a score set's metrics
``<prefix>txt_r1`` ... (``itc_`` for the CLS-only set, no prefix for the set selected on).
Writes ``<out>/table.md`` and ``<out>/results.json`` (each run's test metrics and config).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from plugins.benchmarking import mean_std_text, write_results

COLUMNS = ("txt_r1", "txt_r5", "txt_r10", "img_r1", "img_r5", "img_r10", "r_mean")
HEADER = (
    "| | seeds | i->t R@1 | i->t R@5 | i->t R@10 | t->i R@1 | t->i R@5 | t->i R@10 | mean recall |"
)


def read_run(folder: Path, split: str = "test") -> dict:
    """The config and the last test metrics of ``split`` in one run folder."""
    log = folder / "log.txt"
    if not log.is_file():
        raise FileNotFoundError(f"{folder}: no log.txt (a run folder of tools/lavis_train.py)")
    text = log.read_text()
    config, end = json.JSONDecoder().raw_decode(text.lstrip())
    test, key = None, f"test_{split}"
    for line in text.lstrip()[end:].splitlines():
        if line.strip().startswith("{"):
            test = json.loads(line).get(key, test)
    if test is None:
        raise ValueError(f"{log}: no {key} metrics line (did the run finish its test split?)")
    return {"folder": str(folder), "config": config, "test": test}


def table(runs: list[dict], rows: list[tuple[str, str]]) -> str:
    lines = [HEADER, "|" + "---|" * (HEADER.count("|") - 1)]
    seeds = ",".join(str(run["config"]["run"]["seed"]) for run in runs)
    for label, prefix in rows:
        cells = []
        for column in COLUMNS:
            key = prefix + column
            missing = [run["folder"] for run in runs if key not in run["test"]]
            if missing:
                raise KeyError(f"row {label!r}: no test metric {key!r} in {missing}")
            cells.append(mean_std_text([float(run["test"][key]) for run in runs]))
        lines.append(f"| {label} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (one per seed)")
    parser.add_argument("--rows", nargs="+", required=True, help="label=metric-prefix")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--split", default="test", help="the test split's name (run.test_splits)")
    args = parser.parse_args(argv)
    rows = []
    for row in args.rows:
        label, sep, prefix = row.rpartition("=")
        if not sep or not label:
            raise SystemExit(f"--rows {row!r}: expected label=prefix")
        rows.append((label, prefix))
    runs = [read_run(folder, args.split) for folder in args.runs]
    markdown = table(runs, rows)
    write_results(args.out, runs, markdown, markdown_name="table.md")
    print(markdown, end="")


if __name__ == "__main__":
    main()
