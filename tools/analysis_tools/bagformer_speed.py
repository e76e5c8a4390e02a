"""BagFormer's speed protocol: the bag-wise dual encoder against single-encoder (cross-
attention) scoring of every pair, side by side in one run.

    python tools/analysis_tools/bagformer_speed.py --out runs/bagformer-speed
        [--gallery 100 1000 10000]
        [--cfg-path retrieval_ext/configs/models/bagformer_retrieval_base.yaml]
        [--threads 1] [--query-batch 32] [--pair-batch 32] [--max-measured-pairs 256]
        [--captions data/image_text/annotations/test.json]
        [--dictionary data/image_text/entities.txt]

Protocol (measured: docs/benchmarks/bagformer.md):
- Model: bagformer_retrieval from the config's ``model`` section (default: the official
  sizes, ViT-B/16 at 256 px = 257 image tokens, BERT-base split 6 text + 6 fusion layers,
  256-d projections), random weights (speed does not depend on the values), eval mode,
  float32, torch.no_grad, ``--threads`` intra-op threads.
- Precomputed, not timed: the gallery's image token embeddings (projected, normalised:
  N x 257 x 256) for the dual encoder; the gallery's ViT outputs (N x 257 x 768) for the
  single encoder, which can reuse nothing else (every pair goes through the fusion layers).
  Gallery tensors are random (same shapes); queries are real captions of the embedded
  test split, tokenised at max_txt_len.
- Latency: one text query against N images: tokenise + bag + encode the query, then
  dual = bag-wise MaxSim over the N images; single = ITM of the fusion encoder over the N
  pairs in batches of ``--pair-batch``. Median of ``--repeats``.
- Throughput: ``--query-batch`` queries encoded together, scored against the N images;
  queries per second.
- The single encoder is timed on at most ``--max-measured-pairs`` pairs per setting; a
  setting with more pairs is extrapolated linearly from the measured time per pair batch
  (ITM cost is the same for every batch) and marked ``extrapolated``.
- Bagging cost per caption: the Aho-Corasick match of a batch of captions, uncached
  (a fresh bagger) and cached (the same captions again).
Writes results.json (every timing and the settings, load average, threads, the machine
stamp) and report.md.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import retrieval_ext  # noqa: F401  (registers the model, applies LAVIS fixes)
from retrieval_ext.datasets.entity_dictionary import read_caption_corpus
from retrieval_ext.models.bagformer import BagFormerRetrieval
from retrieval_ext.models.bagging import EntityBagger, chunked_bagwise_similarity

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from tabulate import tabulate

from plugins.benchmarking import machine_stamp, median_seconds, set_threads, write_results

REPO = Path(__file__).resolve().parents[2]
PAPER = {"latency": 20.72, "throughput": 25.74}


def build_model(cfg_path: str, dictionary: str) -> BagFormerRetrieval:
    cfg = OmegaConf.load(cfg_path).model
    cfg.entity_dictionary = dictionary
    cfg.pretrained, cfg.load_finetuned = "", False
    return BagFormerRetrieval.from_config(cfg).eval()


class Setup:
    """The model, a query pool, and per-query helpers for both paths."""

    def __init__(self, model, captions):
        self.model = model
        self.captions = captions
        vit = model.visual_encoder
        self.image_tokens = vit.patch_embed.num_patches + 1  # with [CLS]
        self.vision_width = vit.vision_width
        self.embed_dim = model.vision_proj.out_features

    def encode(self, captions):
        """Tokenise, bag, encode: fusion inputs and normalised bag features."""
        text = self.model.tokenize(captions)
        sequence, mask, bags, bag_mask = self.model.encode_text(text)
        return sequence, mask, F.normalize(self.model.text_proj(bags), dim=-1), bag_mask

    def dual(self, captions, gallery_tokens):
        _, _, bags, bag_mask = self.encode(captions)
        return chunked_bagwise_similarity(bags, bag_mask, gallery_tokens, directions="t2i")[0]

    def single(self, captions, gallery_feats, pair_batch: int):
        sequence, mask, _, _ = self.encode(captions)
        scores = []
        for q in range(len(captions)):
            for start in range(0, len(gallery_feats), pair_batch):
                images = gallery_feats[start : start + pair_batch]
                n = len(images)
                logits = self.model.fusion_itm_logits(
                    sequence[q : q + 1].expand(n, -1, -1), mask[q : q + 1].expand(n, -1), images
                )
                scores.append(logits[:, 1])
        return torch.cat(scores)


@torch.no_grad()
def measure(setup: Setup, gallery: list[int], args) -> dict:
    gen = torch.Generator().manual_seed(0)
    query = setup.captions[:1]
    batch = (setup.captions * (args.query_batch // len(setup.captions) + 1))[: args.query_batch]
    pair_batch = args.pair_batch
    # single encoder: one batch of pairs, timed once per setting (cost is linear in batches)
    feats = torch.randn(pair_batch, setup.image_tokens, setup.vision_width, generator=gen)
    text_one = median_seconds(lambda: setup.encode(query), args.repeats)
    text_batch = median_seconds(lambda: setup.encode(batch), args.repeats)
    per_pair_batch = (
        median_seconds(lambda: setup.single(query, feats, pair_batch), args.repeats) - text_one
    )
    rows = []
    for n in gallery:
        tokens = F.normalize(
            torch.randn(n, setup.image_tokens, setup.embed_dim, generator=gen), dim=-1
        )
        dual_latency = median_seconds(lambda t=tokens: setup.dual(query, t), args.repeats)
        dual_batch = median_seconds(
            lambda t=tokens: setup.dual(batch, t), max(1, args.repeats // 2)
        )
        batches = -(-n // pair_batch)
        if n <= args.max_measured_pairs:
            gallery_feats = torch.randn(n, setup.image_tokens, setup.vision_width, generator=gen)
            single_latency = median_seconds(
                lambda g=gallery_feats: setup.single(query, g, pair_batch), args.repeats
            )
            latency_note = "measured"
        else:
            single_latency = text_one + batches * per_pair_batch
            latency_note = "extrapolated"
        # throughput: every query of the batch against every image
        single_batch = text_batch + len(batch) * batches * per_pair_batch
        rows.append(
            {
                "N": n,
                "dual_latency_ms": 1000 * dual_latency,
                "single_latency_ms": 1000 * single_latency,
                "single_latency": latency_note,
                "latency_ratio": single_latency / dual_latency,
                "dual_qps": len(batch) / dual_batch,
                "single_qps": len(batch) / single_batch,
                "single_qps_note": "extrapolated"
                if len(batch) * n > args.max_measured_pairs
                else "measured",
                "throughput_ratio": single_batch / dual_batch,
            }
        )
    return {
        "text_encode_ms_one_query": 1000 * text_one,
        "text_encode_ms_query_batch": 1000 * text_batch,
        "single_ms_per_pair_batch": 1000 * per_pair_batch,
        "rows": rows,
    }


def bagging_cost(model, captions, repeats: int = 5) -> dict:
    """Microseconds per caption of the bagging layer, uncached and cached."""
    text = model.tokenize(captions)
    ids, mask = text.input_ids.cpu(), text.attention_mask.cpu()
    report = model.bagger.report
    fresh_times, cached_times = [], []
    for _ in range(repeats):
        bagger = EntityBagger(
            [
                tuple(model.tokenizer(p, add_special_tokens=False)["input_ids"])
                for p in _phrases(report.path)
            ]
        )
        start = time.perf_counter()
        bagger.bag_index(ids, mask)
        fresh_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        bagger.bag_index(ids, mask)
        cached_times.append(time.perf_counter() - start)
    per = 1e6 / len(captions)
    return {
        "captions": len(captions),
        "uncached_us_per_caption": statistics.median(fresh_times) * per,
        "cached_us_per_caption": statistics.median(cached_times) * per,
    }


def _phrases(path):
    return [
        line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--cfg-path",
        default=str(REPO / "retrieval_ext/configs/models/bagformer_retrieval_base.yaml"),
    )
    parser.add_argument(
        "--gallery", type=int, nargs="*", default=[100, 1000, 10000], help="none: bagging cost only"
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--query-batch", type=int, default=32)
    parser.add_argument("--pair-batch", type=int, default=32)
    parser.add_argument("--max-measured-pairs", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--captions", default="data/image_text/annotations/test.json")
    parser.add_argument("--dictionary", default="data/image_text/entities.txt")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    set_threads(args.threads)
    captions = read_caption_corpus([args.captions])
    model = build_model(args.cfg_path, args.dictionary)
    setup = Setup(model, captions)
    machine = machine_stamp()
    load_before = os.getloadavg()
    timings = measure(setup, args.gallery, args)
    bagging = bagging_cost(model, captions)
    result = {
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "image_tokens": setup.image_tokens,
        "text_hidden": model.text_encoder.config.hidden_size,
        "fusion_layers": model.text_encoder.config.num_hidden_layers
        - model.text_encoder.config.fusion_layer,
        "load_average_before_after": [load_before, os.getloadavg()],
        "torch_threads": torch.get_num_threads(),
        "machine": machine,
        **timings,
        "bagging": bagging,
        "paper_ratios": PAPER,
    }
    table = [
        {
            "N": r["N"],
            "latency dual (ms)": f"{r['dual_latency_ms']:.1f}",
            "latency single (ms)": f"{r['single_latency_ms']:.0f} ({r['single_latency']})",
            "latency ratio": f"{r['latency_ratio']:.1f}x",
            "throughput dual (q/s)": f"{r['dual_qps']:.2f}",
            "throughput single (q/s)": f"{r['single_qps']:.4f} ({r['single_qps_note']})",
            "throughput ratio": f"{r['throughput_ratio']:.1f}x",
        }
        for r in timings["rows"]
    ]
    lines = [
        "# BagFormer speed\n",
        f"Config `{args.cfg_path}`; threads {args.threads}; query batch {args.query_batch}; "
        f"pair batch {args.pair_batch}; load average before/after "
        f"{result['load_average_before_after']}; paper: {PAPER['latency']}x latency, "
        f"{PAPER['throughput']}x throughput\n",
        tabulate(table, headers="keys", tablefmt="github"),
        "",
        f"Bagging: {bagging['uncached_us_per_caption']:.1f} us/caption uncached, "
        f"{bagging['cached_us_per_caption']:.1f} us/caption cached "
        f"({bagging['captions']} captions)",
        "",
    ]
    write_results(args.out, result, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
