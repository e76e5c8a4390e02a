"""Convert MUGE (e-commerce text-to-image retrieval, BagFormer's data) to LAVIS's format.

    python tools/data/lavis/convert_muge.py --muge-dir <folder with {train,valid,test}_imgs.tsv and
        {train,valid,test}_queries.jsonl> --out data/muge

Decodes the base64 images to <out>/images/<split>/<id>.<jpg|png> and writes
<out>/annotations/{train,valid}.json (test too when its queries carry answers). See
retrieval_ext/datasets/image_text_converters.py. Train with a bert-base-chinese tokenizer
folder: --options model.tokenizer=<folder>.
"""

import argparse
import json

from retrieval_ext.datasets.image_text_converters import convert_muge


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--muge-dir", required=True, help="folder with the official MUGE files")
    parser.add_argument("--out", required=True, help="output folder (images/, annotations/)")
    args = parser.parse_args(argv)
    print(json.dumps(convert_muge(args.muge_dir, args.out), ensure_ascii=False))


if __name__ == "__main__":
    main()
