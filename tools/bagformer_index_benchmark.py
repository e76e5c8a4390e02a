"""Bag-wise retrieval past brute force: FAISS over image tokens for candidates, then exact
MaxSim on them (retrieval_ext/multivector.py), against brute-force MaxSim.

    python tools/bagformer_index_benchmark.py --out runs/bagformer-index \
        [--gallery 10000 100000] [--kinds flat ivf hnsw] [--token-k 32] [--queries 50]
        [--tokens 37] [--dim 64] [--threads 1]

The gallery is synthetic and clustered (each image token = a normalised mix of one of
``--concepts`` concept vectors and noise), at the embedded config's sizes by default (37
tokens of 64-d a image); each query takes 8 tokens of one gallery image plus noise as its
bags. Reported per index kind and N: build time, median query latency, the brute-force
latency, and recall@10 against exact MaxSim (share of the exact top 10 found).
"""

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from retrieval_ext.multivector import MultiVectorIndex, exact_search

import torch
import torch.nn.functional as F
from tabulate import tabulate


def clustered_gallery(n, tokens, dim, concepts, seed):
    gen = torch.Generator().manual_seed(seed)
    centres = F.normalize(torch.randn(concepts, dim, generator=gen), dim=-1)
    picks = torch.randint(0, concepts, (n, tokens), generator=gen)
    noise = torch.randn(n, tokens, dim, generator=gen) / dim**0.5
    return F.normalize(centres[picks] + 0.5 * noise, dim=-1), gen


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gallery", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--kinds", nargs="+", default=["flat", "ivf", "hnsw"])
    parser.add_argument("--token-k", type=int, default=32)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--tokens", type=int, default=37)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--concepts", type=int, default=1024)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    import faiss

    faiss.omp_set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for n in args.gallery:
        tokens, gen = clustered_gallery(n, args.tokens, args.dim, args.concepts, args.seed)
        queries = []
        for _ in range(args.queries):
            image = int(torch.randint(0, n, (1,), generator=gen))
            picked = tokens[image, torch.randperm(args.tokens, generator=gen)[:8]]
            noise = torch.randn(picked.shape, generator=gen) / args.dim**0.5
            queries.append(F.normalize(picked + 0.3 * noise, dim=-1))
        exact, exact_times = [], []
        for bags in queries:
            start = time.perf_counter()
            exact.append(set(exact_search(tokens, bags, 10)[1].tolist()))
            exact_times.append(time.perf_counter() - start)
        for kind in args.kinds:
            start = time.perf_counter()
            index = MultiVectorIndex(tokens, kind=kind)
            build = time.perf_counter() - start
            times, found, candidates = [], [], []
            for bags, reference in zip(queries, exact, strict=True):
                start = time.perf_counter()
                _, ids, count = index.search(bags, 10, token_k=args.token_k)
                times.append(time.perf_counter() - start)
                found.append(len(reference & set(ids.tolist())) / len(reference))
                candidates.append(count)
            rows.append(
                {
                    "N": n,
                    "index": kind,
                    "build_s": build,
                    "latency_ms": 1000 * statistics.median(times),
                    "brute_force_ms": 1000 * statistics.median(exact_times),
                    "recall@10_vs_exact": statistics.fmean(found),
                    "mean_candidates": statistics.fmean(candidates),
                }
            )
            print(rows[-1], flush=True)
            del index
    (args.out / "results.json").write_text(
        json.dumps({"settings": vars(args) | {"out": str(args.out)}, "rows": rows}, indent=1)
    )
    table = tabulate(rows, headers="keys", tablefmt="github", floatfmt=".3f")
    (args.out / "report.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
