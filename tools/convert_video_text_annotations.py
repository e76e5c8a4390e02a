"""Convert official MSR-VTT / MSVD / DiDeMo annotations to the retrieval builders' format.

    python tools/convert_video_text_annotations.py msrvtt --videodatainfo MSRVTT_data.json \
        --train-csv MSRVTT_train.9k.csv --test-csv MSRVTT_JSFUSION_test.csv \
        --out data/msrvtt/annotations
    python tools/convert_video_text_annotations.py msvd --descriptions AllVideoDescriptions.txt \
        --split-dir <dir with train_list.txt val_list.txt test_list.txt> --out data/msvd/annotations
    python tools/convert_video_text_annotations.py didemo --ann-dir <dir with *_data.json> \
        --out data/didemo/annotations

See retrieval_ext/datasets/converters.py for what each reads and writes.
"""

import argparse
import json

from retrieval_ext.datasets.converters import convert_didemo, convert_msrvtt, convert_msvd


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="dataset", required=True)
    msrvtt = sub.add_parser("msrvtt")
    msrvtt.add_argument("--videodatainfo", required=True)
    msrvtt.add_argument("--train-csv", required=True)
    msrvtt.add_argument("--test-csv", required=True)
    msvd = sub.add_parser("msvd")
    msvd.add_argument("--descriptions", required=True)
    msvd.add_argument("--split-dir", required=True)
    didemo = sub.add_parser("didemo")
    didemo.add_argument("--ann-dir", required=True)
    for p, ext in ((msrvtt, ".mp4"), (msvd, ".avi"), (didemo, ".mp4")):
        p.add_argument("--out", required=True)
        p.add_argument("--video-ext", default=ext)
    args = parser.parse_args(argv)
    if args.dataset == "msrvtt":
        counts = convert_msrvtt(
            args.videodatainfo, args.train_csv, args.test_csv, args.out, args.video_ext
        )
    elif args.dataset == "msvd":
        counts = convert_msvd(args.descriptions, args.split_dir, args.out, args.video_ext)
    else:
        counts = convert_didemo(args.ann_dir, args.out, args.video_ext)
    print(json.dumps({"out": args.out, "entries": counts}))


if __name__ == "__main__":
    main()
