"""Convert official MSR-VTT, MSVD, DiDeMo, ActivityNet, VATEX annotations to the builders' format.

    python tools/data/lavis/convert_video_text_annotations.py \
        msrvtt --videodatainfo MSRVTT_data.json \
        --train-csv MSRVTT_train.9k.csv --test-csv MSRVTT_JSFUSION_test.csv \
        --out data/msrvtt/annotations
    python tools/data/lavis/convert_video_text_annotations.py \
        msrvtt --videodatainfo MSRVTT_data.json \
        --train-csv MSRVTT_train.7k.csv --train-name 7k --val-csv MSRVTT_full_split_val.csv \
        --test-csv MSRVTT_full_split_test.csv --test-name full --out data/msrvtt/annotations
    python tools/data/lavis/convert_video_text_annotations.py \
        msvd --descriptions AllVideoDescriptions.txt \
        --split-dir <dir with train_list.txt val_list.txt test_list.txt> --out data/msvd/annotations
    python tools/data/lavis/convert_video_text_annotations.py \
        didemo --ann-dir <dir with *_data.json> \
        --out data/didemo/annotations
    python tools/data/lavis/convert_video_text_annotations.py activitynet \
        --ann-dir <dir with train.json val_1.json> [--video-dir data/activitynet/videos] \
        --out data/activitynet/annotations
    python tools/data/lavis/convert_video_text_annotations.py vatex \
        --training-json vatex_training_v1.0.json --validation-json vatex_validation_v1.0.json \
        --train-ids VATEX_train.csv --val-ids VATEX_val.csv --test-ids VATEX_test.csv \
        --out data/vatex/annotations

See retrieval_ext/datasets/converters.py for what each reads and writes.
"""

import argparse
import json

from retrieval_ext.datasets.converters import (
    convert_activitynet,
    convert_didemo,
    convert_msrvtt,
    convert_msvd,
    convert_vatex,
)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="dataset", required=True)
    msrvtt = sub.add_parser("msrvtt")
    msrvtt.add_argument("--videodatainfo", required=True)
    msrvtt.add_argument("--train-csv", required=True)
    msrvtt.add_argument("--test-csv", required=True)
    msrvtt.add_argument("--val-csv", help="a validation list, converted as the test list")
    msrvtt.add_argument("--train-name", default="9k", help="train_<name>.json (9k or 7k)")
    msrvtt.add_argument("--test-name", default="1k-A", help="test_<name>.json (1k-A or full)")
    msvd = sub.add_parser("msvd")
    msvd.add_argument("--descriptions", required=True)
    msvd.add_argument("--split-dir", required=True)
    didemo = sub.add_parser("didemo")
    didemo.add_argument("--ann-dir", required=True)
    activitynet = sub.add_parser("activitynet")
    activitynet.add_argument("--ann-dir", required=True, help="folder with train.json, val_1.json")
    activitynet.add_argument(
        "--video-dir",
        help="take each video's file name (v_<id> or <id>, any extension) from this folder",
    )
    activitynet.add_argument(
        "--strip-v-prefix",
        action="store_true",
        help="name files <id><ext> without v_ (CLIP4Clip's naming) when not in --video-dir",
    )
    vatex = sub.add_parser("vatex")
    vatex.add_argument("--training-json", required=True, help="vatex_training_v1.0.json")
    vatex.add_argument("--validation-json", required=True, help="vatex_validation_v1.0.json")
    for split in ("train", "val", "test"):
        vatex.add_argument(
            f"--{split}-ids", required=True, help="CSV with a video_id column, or one id a line"
        )
    for p, ext in (
        (msrvtt, ".mp4"),
        (msvd, ".avi"),
        (didemo, ".mp4"),
        (activitynet, ".mp4"),
        (vatex, ".mp4"),
    ):
        p.add_argument("--out", required=True)
        p.add_argument("--video-ext", default=ext)
    args = parser.parse_args(argv)
    if args.dataset == "msrvtt":
        counts = convert_msrvtt(
            args.videodatainfo, args.train_csv, args.test_csv, args.out, args.video_ext,
            args.train_name, args.test_name, args.val_csv,
        )  # fmt: skip
    elif args.dataset == "msvd":
        counts = convert_msvd(args.descriptions, args.split_dir, args.out, args.video_ext)
    elif args.dataset == "didemo":
        counts = convert_didemo(args.ann_dir, args.out, args.video_ext)
    elif args.dataset == "activitynet":
        counts = convert_activitynet(
            args.ann_dir, args.out, args.video_ext, args.video_dir, args.strip_v_prefix
        )
    else:
        split_lists = {"train": args.train_ids, "val": args.val_ids, "test": args.test_ids}
        counts = convert_vatex(
            args.training_json, args.validation_json, split_lists, args.out, args.video_ext
        )
    print(json.dumps({"out": args.out, "entries": counts}))


if __name__ == "__main__":
    main()
