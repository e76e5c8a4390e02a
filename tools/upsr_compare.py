"""UPSR beside SASRec, BERT4Rec and Pop on ML-100K (same split and seed), and zero-shot.

    python tools/upsr_compare.py --out runs/upsr-compare             # CPU-sized slice
    python tools/upsr_compare.py --users all --last all --no-zero-shot \
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

from recbole_ext.compare import CompareSettings, run_comparison

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
    for f in fields(CompareSettings):
        if f.name in ("models", "zero_shot", "seeds", "upsr_seeds", "test_saved"):
            continue
        if f.name in ("users", "last", "encoder_layers"):
            kind = _int_or_all
        elif f.name in ("backbone", "target_domain", "upsr_config"):
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
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    settings = CompareSettings(
        **{f.name: getattr(args, f.name) for f in fields(CompareSettings) if f.name != "zero_shot"},
        zero_shot=not args.no_zero_shot,
    )
    results = run_comparison(settings, args.out)
    lines = [
        "# UPSR comparison\n",
        f"Settings: `{json.dumps(results['settings'])}`; data: {results['data']}\n",
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
