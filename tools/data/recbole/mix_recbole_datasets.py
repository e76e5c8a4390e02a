"""Mix RecBole atomic datasets into one, for UPSR's multi-domain pre-training.

    python tools/data/recbole/make_ml100k_domains.py --out data
    python tools/data/recbole/mix_recbole_datasets.py --data-path data --dataset ml-100k-action \
        --dataset ml-100k-comedy --name ml-100k-action+comedy --keep-ids
    # pre-train UPSR (upsr_stage: pretrain) on ml-100k-action+comedy, then evaluate it
    # zero-shot on ml-100k-drama (upsr_init_checkpoint: <saved .pth>)
"""

import argparse
import json
import sys
from pathlib import Path

from recbole_ext.data.mix import mix_datasets


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-path", type=Path, required=True, help="folder of the datasets")
    parser.add_argument("--dataset", action="append", required=True, help="repeat per dataset")
    parser.add_argument("--name", required=True, help="name of the mixed dataset")
    parser.add_argument("--out", type=Path, help="output data_path (default: --data-path)")
    parser.add_argument(
        "--keep-ids", action="store_true", help="keep ids (domains of one dataset, same users)"
    )
    args = parser.parse_args(argv)
    sources = [args.data_path / d for d in args.dataset]
    summary = mix_datasets(sources, args.out or args.data_path, args.name, args.keep_ids)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
