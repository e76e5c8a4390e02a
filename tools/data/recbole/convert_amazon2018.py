"""Convert an Amazon 2018 category (reviews + metadata JSON lines) to RecBole atomic files.

    python tools/data/recbole/convert_amazon2018.py --reviews Musical_Instruments.json.gz \
        --meta meta_Musical_Instruments.json.gz --out data --name amazon-instruments --k 5
    plugzoo upsr-text --dataset amazon-instruments --data-path data \
        --config-file configs/recbole/upsr_text_amazon.yaml

Prints the conversion summary (with every skipped-record count); it is also written to
<out>/<name>/conversion_summary.json.
"""

import argparse
import json
import sys
from pathlib import Path

from recbole_ext.data.amazon import convert_amazon2018


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviews", type=Path, required=True, help="<Category>.json[.gz]")
    parser.add_argument("--meta", type=Path, required=True, help="meta_<Category>.json[.gz]")
    parser.add_argument("--out", type=Path, required=True, help="RecBole data_path folder")
    parser.add_argument("--name", required=True, help="dataset name (folder and file stem)")
    parser.add_argument("--k", type=int, default=5, help="k-core threshold (default 5)")
    args = parser.parse_args(argv)
    summary = convert_amazon2018(args.reviews, args.meta, args.out, args.name, args.k)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
