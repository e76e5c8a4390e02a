"""Write the embedded text-video retrieval dataset (seeded mp4 clips + annotations).

    python tools/data/lavis/make_video_text_dataset.py \
        data/video_text [--train 160 --val 24 --test 24]
        [--seed 0]

Counts are twin pairs (each pair: a clip and its time-reversed twin). See
retrieval_ext/datasets/synthetic.py for what the clips and captions contain.
"""

import argparse
import json

from retrieval_ext.datasets.synthetic import write_video_text_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="output folder (videos/ and annotations/ go inside)")
    parser.add_argument("--train", type=int, default=160, help="twin pairs in train")
    parser.add_argument("--val", type=int, default=24, help="twin pairs in val")
    parser.add_argument("--test", type=int, default=24, help="twin pairs in test")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    summary = write_video_text_dataset(
        args.root, {"train": args.train, "val": args.val, "test": args.test}, seed=args.seed
    )
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
