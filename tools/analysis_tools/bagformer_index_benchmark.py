"""Bag-wise retrieval past brute force: the PLAID-style multi-vector index of
retrieval_ext/multivector.py (centroid lists, centroid interaction, exact MaxSim on a
shortlist) against brute-force MaxSim over every image, on one synthetic gallery.

    python tools/analysis_tools/bagformer_index_benchmark.py --out runs/bagformer-index \
        [--gallery 10000 100000 1000000] [--nprobe 2 4 8] [--rerank 256 1024]
        [--centroids C] [--store-dtype float16] [--queries 30] [--tokens 37] [--dim 64]
        [--concepts 1024] [--chunk 50000] [--threads 1] [--build-threads 1] [--seed 0]

Gallery: synthetic and clustered, at the embedded config's sizes by default (37 tokens of
64-d an image): each token is a normalised mix of one of ``--concepts`` concept vectors
and noise. It is produced in chunks of ``--chunk`` images from a seed per chunk, so the
brute-force reference regenerates each chunk in float32 instead of holding the gallery
(1M images are 9.5 GB in float32). Queries: 8 tokens of a random image of the first
chunk plus noise, as bags. Latency: one query at a time, ``--threads`` intra-op threads,
median over the queries; brute force = the sum over chunks of exact MaxSim of the query
against the chunk (generation not timed). Recall@10 vs exact: share of the exact top 10
that the index returns; source@1: share of queries whose source image ranks first.
Writes results.json (every row, the settings and the machine stamp) and report.md.
"""

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from retrieval_ext.multivector import MultiVectorIndex, exact_search

import torch
import torch.nn.functional as F
from tabulate import tabulate

from plugins.benchmarking import machine_stamp, set_threads, write_results


class ClusteredGallery:
    """``count`` images of ``tokens`` normalised ``dim``-d tokens around ``concepts``
    centres, generated chunk by chunk (the same chunk every time)."""

    def __init__(self, count, tokens, dim, concepts, chunk, seed):
        self.count, self.tokens, self.dim, self.chunk, self.seed = count, tokens, dim, chunk, seed
        gen = torch.Generator().manual_seed(seed)
        self.centres = F.normalize(torch.randn(concepts, dim, generator=gen), dim=-1)

    def chunks(self):
        """``(first image id, (n, tokens, dim) float32 tensor)`` in id order."""
        for number, start in enumerate(range(0, self.count, self.chunk)):
            n = min(self.chunk, self.count - start)
            gen = torch.Generator().manual_seed(self.seed * 100_003 + number + 1)
            picks = torch.randint(0, len(self.centres), (n, self.tokens), generator=gen)
            noise = torch.randn(n, self.tokens, self.dim, generator=gen) / self.dim**0.5
            yield start, F.normalize(self.centres[picks] + 0.5 * noise, dim=-1)


def make_queries(first_chunk, count, seed):
    gen = torch.Generator().manual_seed(seed + 7)
    queries = []
    for _ in range(count):
        image = int(torch.randint(0, len(first_chunk), (1,), generator=gen))
        picked = first_chunk[image, torch.randperm(first_chunk.shape[1], generator=gen)[:8]]
        noise = torch.randn(picked.shape, generator=gen) / picked.shape[1] ** 0.5
        queries.append((image, F.normalize(picked + 0.3 * noise, dim=-1)))
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


def build(gallery, args):
    """The index over every chunk, trained on a sample of the first chunk's tokens."""
    set_threads(args.build_threads)
    start = time.perf_counter()
    index, first = None, None
    for offset, chunk in gallery.chunks():
        if index is None:
            first = chunk
            index = MultiVectorIndex(
                args.dim, args.tokens, args.centroids, store_dtype=args.store_dtype
            )
            sample = chunk.reshape(-1, args.dim)
            gen = torch.Generator().manual_seed(args.seed)
            index.train(sample[torch.randperm(len(sample), generator=gen)[: 64 * 4096]])
        index.add(chunk)
        print(f"  indexed {offset + len(chunk):,} images ({time.perf_counter() - start:.0f} s)")
    index._inverted_lists()  # part of the build
    set_threads(args.threads)
    return index, first, time.perf_counter() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gallery", type=int, nargs="+", default=[10000, 100000])
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
    for n in args.gallery:
        gallery = ClusteredGallery(n, args.tokens, args.dim, args.concepts, args.chunk, args.seed)
        print(f"N = {n:,}: building", flush=True)
        index, first, build_seconds = build(gallery, args)
        queries = make_queries(first, args.queries, args.seed)
        print(f"N = {n:,}: brute force over {len(queries)} queries", flush=True)
        exact, exact_first, exact_seconds = brute_force(gallery, queries)
        for nprobe in args.nprobe:
            for rerank in args.rerank:
                index.search(queries[0][1], 10, nprobe=nprobe, rerank=rerank)  # warm-up
                times, found, source, candidates = [], [], [], []
                for (image, bags), reference in zip(queries, exact, strict=True):
                    start = time.perf_counter()
                    _, ids, count = index.search(bags, 10, nprobe=nprobe, rerank=rerank)
                    times.append(time.perf_counter() - start)
                    found.append(len(reference & set(ids.tolist())) / len(reference))
                    source.append(bool(len(ids)) and ids[0].item() == image)
                    candidates.append(count)
                latency, brute = statistics.median(times), statistics.median(exact_seconds)
                rows.append(
                    {
                        "N": n,
                        "centroids": index.num_centroids,
                        "nprobe": nprobe,
                        "rerank": rerank,
                        "build_s": build_seconds,
                        "latency_ms": 1000 * latency,
                        "brute_force_ms": 1000 * brute,
                        "speed-up": brute / latency,
                        "recall@10_vs_exact": statistics.fmean(found),
                        "source@1": statistics.fmean(source),
                        "exact source@1": statistics.fmean(
                            f == image for f, (image, _) in zip(exact_first, queries, strict=True)
                        ),
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
