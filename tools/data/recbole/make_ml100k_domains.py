"""Cut RecBole's bundled ML-100K into disjoint genre domains (ordinary RecBole datasets).

    python tools/data/recbole/make_ml100k_domains.py --out data
    # then e.g. dataset=ml-100k-drama, data_path=data in any RecBole config

Domains and their genres: recbole_ext/data/ml100k_domains.py (GENRE_DOMAINS), the same
groups as text_domains in configs/recbole/upsr_text.yaml.
"""

import argparse
import json
import sys
from pathlib import Path

from recbole_ext.data.ml100k_domains import write_genre_domains


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="RecBole data_path folder")
    args = parser.parse_args(argv)
    print(json.dumps(write_genre_domains(args.out), indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
