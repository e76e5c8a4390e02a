"""Generate the embedded temporal benchmark (seeded mp4 clips + VideoDataset lists).

python tools/data/mmaction/make_motion_clips.py data/motion_clips [--level quick|hard]
    [--train 32 --val 8 --test 8]
"""

import argparse
import time
from pathlib import Path

from mmaction_ext.datasets import write_motion_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--level", choices=["quick", "hard"], default="quick")
    parser.add_argument("--train", type=int, default=32, help="clips per class")
    parser.add_argument("--val", type=int, default=8, help="clips per class")
    parser.add_argument("--test", type=int, default=8, help="clips per class")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    start = time.time()
    description = write_motion_dataset(
        args.root,
        {"train": args.train, "val": args.val, "test": args.test},
        num_frames=args.frames,
        size=args.size,
        seed=args.seed,
        level=args.level,
    )
    print(
        f"{sum(description['splits'].values())} clips of {len(description['classes'])} classes "
        f"({description['splits']}) in {args.root} ({time.time() - start:.0f} s)"
    )


if __name__ == "__main__":
    main()
