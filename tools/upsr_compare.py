"""UPSR beside SASRec, BERT4Rec and Pop on ML-100K (same split and seed), and zero-shot.

    python tools/upsr_compare.py --out runs/upsr-compare             # CPU-sized defaults
    python tools/upsr_compare.py --users 943 --last 50 --epochs 10 \
        --encoder-layers 6 --decoder-layers 2 --out runs/upsr-full     # all users (a GPU)

Writes results.json (every number and the settings) and report.md in --out. The default
is a seeded slice of ML-100K users with their latest interactions; see
recbole_ext/compare.py.
"""

import argparse
import json
import sys
from dataclasses import fields
from pathlib import Path

from recbole_ext.compare import CompareSettings, run_comparison

from tabulate import tabulate


def main(argv=None) -> int:
    defaults = CompareSettings()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=defaults.models)
    for f in fields(CompareSettings):
        if f.name in ("models", "zero_shot"):
            continue
        kind = str if f.name in ("backbone", "target_domain") else int
        parser.add_argument(
            f"--{f.name.replace('_', '-')}", type=kind, default=getattr(defaults, f.name)
        )
    parser.add_argument("--no-zero-shot", action="store_true")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = CompareSettings(
        **{f.name: getattr(args, f.name) for f in fields(CompareSettings) if f.name != "zero_shot"},
        zero_shot=not args.no_zero_shot,
    )
    results = run_comparison(settings, args.out)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    lines = [
        "# UPSR comparison\n",
        f"Settings: `{json.dumps(results['settings'])}`; data: {results['slice']}\n",
    ]
    for part in ("supervised", "zero_shot"):
        if results[part]:
            lines += [
                f"## {part}\n",
                tabulate(results[part], headers="keys", tablefmt="github", floatfmt=".4f"),
                "",
            ]
    (args.out / "report.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
