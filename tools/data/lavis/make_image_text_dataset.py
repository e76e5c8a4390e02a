"""Write the embedded image-text retrieval dataset (seeded PNG scenes, LAVIS annotations,
the entity dictionary).

    python tools/data/lavis/make_image_text_dataset.py \
        data/image_text [--train 480 --val 60 --test 100]
        [--seed 0] [--size 48]

See retrieval_ext/datasets/image_text_synthetic.py for what the images and captions contain.
"""

import argparse
import json

from retrieval_ext.datasets.image_text_synthetic import write_image_text_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="output folder (images/, annotations/, entities.txt)")
    parser.add_argument("--train", type=int, default=480, help="training images")
    parser.add_argument("--val", type=int, default=60, help="validation images")
    parser.add_argument("--test", type=int, default=100, help="test images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=48, help="image side in pixels")
    args = parser.parse_args(argv)
    summary = write_image_text_dataset(
        args.root,
        {"train": args.train, "val": args.val, "test": args.test},
        seed=args.seed,
        size=args.size,
    )
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
