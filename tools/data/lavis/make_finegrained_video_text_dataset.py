"""Write the fine-grained embedded text-video dataset (seeded mp4 clips + annotations): the
captioned content in only k of the frames, distractors in the others.

    python tools/data/lavis/make_finegrained_video_text_dataset.py \
        data/video_text_finegrained [--train 240 --val 48 --test 96]
        [--k 1] [--frames 8] [--distractors neutral|other-captions] [--seed 0]

Each annotation entry carries ``content_frames``: the 0-based frames that show the content.
See retrieval_ext/datasets/finegrained.py for what the clips and captions contain.
"""

import argparse
import json

from retrieval_ext.datasets.finegrained import DISTRACTORS, write_finegrained_dataset


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", help="output folder (videos/ and annotations/ go inside)")
    parser.add_argument("--train", type=int, default=240, help="clips in train")
    parser.add_argument("--val", type=int, default=48, help="clips in val")
    parser.add_argument("--test", type=int, default=96, help="clips in test")
    parser.add_argument("--k", type=int, default=1, help="frames that show the content")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip")
    parser.add_argument("--distractors", default="neutral", choices=DISTRACTORS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    summary = write_finegrained_dataset(
        args.root,
        {"train": args.train, "val": args.val, "test": args.test},
        k=args.k,
        distractors=args.distractors,
        seed=args.seed,
        num_frames=args.frames,
    )
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
