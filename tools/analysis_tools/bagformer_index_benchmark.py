"""Bag-wise retrieval past brute force: the indexes of retrieval_ext/multivector.py
against brute-force MaxSim over every image, on synthetic galleries. ``plaid``: the
PLAID-style index (centroid lists, centroid interaction, exact MaxSim on a shortlist);
``flat`` / ``hnsw`` / ``ivf`` / ``ivfpq``: :class:`TokenIndex`, FAISS token-level candidates
re-ranked by exact MaxSim.

    python tools/analysis_tools/bagformer_index_benchmark.py --out runs/bagformer-index \
        [--gallery 10000 100000 1000000] [--kind easy hard] [--index plaid hnsw ivfpq]
        [--nprobe 2 4 8] [--rerank 256 1024] [--tokens-per-bag 64 256] [--ef-search 256]
        [--centroids C] [--store-dtype float16] [--queries 30] [--tokens 37] [--dim 64]
        [--concepts 1024] [--hard-noise 2.0] [--hard-shift 0.5]
        [--chunk 50000] [--threads 1] [--build-threads 1] [--seed 0]

Gallery: synthetic and clustered, at the embedded config's sizes by default (37 tokens of
64-d an image): each token is a normalised mix of one of ``--concepts`` concept vectors
and noise. It is produced in chunks of ``--chunk`` images from a seed per chunk, so the
brute-force reference regenerates each chunk in float32 instead of holding the gallery
(1M images are 9.5 GB in float32). Queries: 8 tokens of a random image of the first
chunk plus noise, as bags. ``--kind hard`` makes the gallery weakly clustered (token noise
``--hard-noise`` instead of 0.5 around the concepts) and shifts the queries away from the
image tokens (``--hard-shift`` times one fixed random direction added to every bag before
normalising), as text and image tokens of a real model are distributed differently.
``--index`` settings swept: ``plaid`` every ``--nprobe`` x ``--rerank``; ``flat`` every
``--tokens-per-bag``; ``hnsw`` those x ``--ef-search``; ``ivf`` and ``ivfpq`` those x
``--nprobe`` (``--centroids`` cells). Latency: one query at a time, ``--threads`` intra-op threads,
median over the queries; brute force = the sum over chunks of exact MaxSim of the query
against the chunk (generation not timed). Recall@10 vs exact: share of the exact top 10
that the index returns; source@1: share of queries whose source image ranks first.
Writes results.json (every row, the settings and the machine stamp) and report.md.
"""

import argparse
import itertools
import os
import statistics
import sys
import time
from pathlib import Path

from retrieval_ext.multivector import (
    TOKEN_INDEX_KINDS,
    MultiVectorIndex,
    TokenIndex,
    exact_search,
)

import torch
import torch.nn.functional as F
from tabulate import tabulate

from plugins.benchmarking import machine_stamp, set_threads, write_results


class ClusteredGallery:
    """``count`` images of ``tokens`` normalised ``dim``-d tokens around ``concepts``
    centres (``noise`` the weight of the noise: larger is less clustered), generated chunk
    by chunk (the same chunk every time)."""

    def __init__(self, count, tokens, dim, concepts, chunk, seed, noise=0.5):
        self.count, self.tokens, self.dim, self.chunk, self.seed = count, tokens, dim, chunk, seed
        self.noise = noise
        gen = torch.Generator().manual_seed(seed)
        self.centres = F.normalize(torch.randn(concepts, dim, generator=gen), dim=-1)

    def chunks(self):
        """``(first image id, (n, tokens, dim) float32 tensor)`` in id order."""
        for number, start in enumerate(range(0, self.count, self.chunk)):
            n = min(self.chunk, self.count - start)
            gen = torch.Generator().manual_seed(self.seed * 100_003 + number + 1)
            picks = torch.randint(0, len(self.centres), (n, self.tokens), generator=gen)
            noise = torch.randn(n, self.tokens, self.dim, generator=gen) / self.dim**0.5
            yield start, F.normalize(self.centres[picks] + self.noise * noise, dim=-1)


def make_queries(first_chunk, count, seed, shift=0.0):
    """``(source image, (8, dim) bags)``: 8 tokens of an image plus noise, moved by
    ``shift`` times one fixed unit direction (a text-image shift), normalised."""
    gen = torch.Generator().manual_seed(seed + 7)
    direction = F.normalize(torch.randn(first_chunk.shape[2], generator=gen), dim=0)
    queries = []
    for _ in range(count):
        image = int(torch.randint(0, len(first_chunk), (1,), generator=gen))
        picked = first_chunk[image, torch.randperm(first_chunk.shape[1], generator=gen)[:8]]
        noise = torch.randn(picked.shape, generator=gen) / picked.shape[1] ** 0.5
        queries.append((image, F.normalize(picked + 0.3 * noise + shift * direction, dim=-1)))
    return queries


def brute_force(gallery, queries, k=10):
    """Exact top ``k`` ids and the per-query seconds of brute-force MaxSim."""
    best = [(torch.empty(0), torch.empty(0, dtype=torch.long)) for _ in queries]
    seconds = [0.0] * len(queries)
    for start, chunk in gallery.chunks():
        for q, (_, bags) in enumerate(queries):
            begin = time.perf_counter()
            scores, ids = exact_search(chunk, bags, k)
            merged = torch.cat([best[q][0], scores])
            top = merged.topk(min(k, len(merged)))
            best[q] = (top.values, torch.cat([best[q][1], ids + start])[top.indices])
            seconds[q] += time.perf_counter() - begin
    return [set(ids.tolist()) for _, ids in best], [ids[0].item() for _, ids in best], seconds


def build(gallery, args, kind="plaid"):
    """The index over every chunk, trained on a sample of the first chunk's tokens."""
    set_threads(args.build_threads)
    start = time.perf_counter()
    index, first = None, None
    for offset, chunk in gallery.chunks():
        if index is None:
            first = chunk
            if kind == "plaid":
                index = MultiVectorIndex(
                    args.dim, args.tokens, args.centroids, store_dtype=args.store_dtype
                )
            else:
                index = TokenIndex(
                    args.dim, args.tokens, kind, args.centroids, store_dtype=args.store_dtype
                )
            sample = chunk.reshape(-1, args.dim)
            gen = torch.Generator().manual_seed(args.seed)
            index.train(sample[torch.randperm(len(sample), generator=gen)[: 64 * 4096]])
        index.add(chunk)
        print(f"  indexed {offset + len(chunk):,} images ({time.perf_counter() - start:.0f} s)")
    if kind == "plaid":
        index._inverted_lists()  # part of the build
    set_threads(args.threads)
    return index, first, time.perf_counter() - start


def settings_of(index_kind, args) -> list[dict]:
    """The search settings swept for one index kind (see the module docstring)."""
    if index_kind == "plaid":
        return [{"nprobe": p, "rerank": r} for p in args.nprobe for r in args.rerank]
    per_bag = [{"tokens_per_bag": t} for t in args.tokens_per_bag]
    if index_kind == "hnsw":
        return [s | {"ef_search": e} for s in per_bag for e in args.ef_search]
    if index_kind in ("ivf", "ivfpq"):
        return [s | {"nprobe": p} for s in per_bag for p in args.nprobe]
    return per_bag


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gallery", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--kind", nargs="+", default=["easy"], choices=["easy", "hard"])
    parser.add_argument(
        "--index",
        nargs="+",
        default=["plaid"],
        choices=["plaid", *TOKEN_INDEX_KINDS],
    )
    parser.add_argument("--tokens-per-bag", type=int, nargs="+", default=[256])
    parser.add_argument("--ef-search", type=int, nargs="+", default=[256])
    parser.add_argument("--hard-noise", type=float, default=2.0)
    parser.add_argument("--hard-shift", type=float, default=0.5)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--rerank", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--centroids", type=int, default=None, help="default: by token count")
    parser.add_argument("--store-dtype", default="float32", choices=["float32", "float16"])
    parser.add_argument("--queries", type=int, default=30)
    parser.add_argument("--tokens", type=int, default=37)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--concepts", type=int, default=1024)
    parser.add_argument("--chunk", type=int, default=50000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--build-threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    import faiss  # noqa: F401  (loaded before set_threads, which pins its threads too)

    set_threads(args.threads)
    machine = machine_stamp()
    rows = []
    for kind, n in itertools.product(args.kind, args.gallery):
        noise, shift = (args.hard_noise, args.hard_shift) if kind == "hard" else (0.5, 0.0)
        gallery = ClusteredGallery(
            n, args.tokens, args.dim, args.concepts, args.chunk, args.seed, noise
        )
        exact = None
        for index_kind in args.index:
            print(f"{kind} N = {n:,}: building {index_kind}", flush=True)
            index, first, build_seconds = build(gallery, args, index_kind)
            if exact is None:
                queries = make_queries(first, args.queries, args.seed, shift)
                print(f"{kind} N = {n:,}: brute force over {len(queries)} queries", flush=True)
                exact, exact_first, exact_seconds = brute_force(gallery, queries)
            brute = statistics.median(exact_seconds)
            exact_source = statistics.fmean(
                f == image for f, (image, _) in zip(exact_first, queries, strict=True)
            )
            for setting in settings_of(index_kind, args):
                index.search(queries[0][1], 10, **setting)  # warm-up
                times, found, source, candidates = [], [], [], []
                for (image, bags), reference in zip(queries, exact, strict=True):
                    start = time.perf_counter()
                    _, ids, count = index.search(bags, 10, **setting)
                    times.append(time.perf_counter() - start)
                    found.append(len(reference & set(ids.tolist())) / len(reference))
                    source.append(bool(len(ids)) and ids[0].item() == image)
                    candidates.append(count)
                latency = statistics.median(times)
                rows.append(
                    {
                        "gallery": kind,
                        "index": index_kind,
                        "N": n,
                        "centroids": (
                            index.num_centroids if index_kind == "plaid" else index.cells
                        ),
                        "nprobe": setting.get("nprobe"),
                        "rerank": setting.get("rerank"),
                        "tokens_per_bag": setting.get("tokens_per_bag"),
                        "ef_search": setting.get("ef_search"),
                        "build_s": build_seconds,
                        "latency_ms": 1000 * latency,
                        "brute_force_ms": 1000 * brute,
                        "speed-up": brute / latency,
                        "recall@10_vs_exact": statistics.fmean(found),
                        "source@1": statistics.fmean(source),
                        "exact source@1": exact_source,
                        "mean_candidates": statistics.fmean(candidates),
                    }
                )
                print(rows[-1], flush=True)
            del index
    settings = vars(args) | {"out": str(args.out), "load_average": os.getloadavg()}
    table = tabulate(rows, headers="keys", tablefmt="github", floatfmt=".3f")
    write_results(args.out, {"settings": settings, "machine": machine, "rows": rows}, table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
