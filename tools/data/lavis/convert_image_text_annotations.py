"""Convert Karpathy's COCO / Flickr30k split files to LAVIS's retrieval annotation format.

    python tools/data/lavis/convert_image_text_annotations.py \
        <dataset_coco.json> --out data/coco/annotations
    python tools/data/lavis/convert_image_text_annotations.py <dataset_flickr30k.json> \
        --out data/flickr30k/annotations

Writes train.json (one record per caption; restval joins train), val.json and test.json
(one record per image). LAVIS's own coco_karpathy_*.json / flickr30k_*.json files are
already in that format and need no conversion. See retrieval_ext/datasets/image_text_converters.py.
"""

import argparse
import json

from retrieval_ext.datasets.image_text_converters import convert_karpathy


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "dataset_json", help="Karpathy's dataset_coco.json or dataset_flickr30k.json"
    )
    parser.add_argument("--out", required=True, help="output folder for the annotation files")
    args = parser.parse_args(argv)
    counts = convert_karpathy(args.dataset_json, args.out)
    print(json.dumps({split: {"images": n, "captions": c} for split, (n, c) in counts.items()}))


if __name__ == "__main__":
    main()
