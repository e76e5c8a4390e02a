"""Query latency and throughput versus gallery size: brute force, FAISS exact, FAISS IVF.

    python tools/analysis_tools/retrieval_index_benchmark.py [--sizes 1000 10000 100000 1000000]
        [--dim 512] [--threads 2] [--queries 256] [--nprobe 16] [--seed 0]
        [--out runs/index_benchmark]

Protocol (one run, one machine, every method on the same vectors):
- gallery: N L2-normalised float32 vectors (CLIP4Clip's one vector per video) drawn as a
  mixture of N/100 Gaussian clusters (real embeddings are clustered; uniform random
  vectors are the worst case for any partitioning index), with per-vector noise as large
  as the centre (``--spread 1``); queries: gallery members plus noise, renormalised, so
  every query has a true nearest neighbour;
- precomputed and not timed: the gallery vectors, the index (its build time is reported
  separately), the query vectors (text encoding is the same for every method);
- latency: median over ``--latency-repeats`` single-query top-10 searches (batch 1);
  throughput: queries per second of a batched top-10 search of ``--queries`` queries,
  median of 3;
- brute force: torch ``queries @ gallery.T`` + ``topk``; exact: FAISS ``IndexFlatIP``;
  approximate: FAISS ``IndexIVFFlat`` (``nlist = 4 sqrt(N)``, at most 4096, k-means on a
  sample of 64 points a cell, ``--nprobe`` cells per query);
- recall@10 of the approximate index: the fraction of the exact top-10 it returns;
- threads: ``--threads`` for both torch and FAISS.
Writes ``results.json`` (every number, the arguments and the machine stamp) and ``table.md``
to ``--out``.
"""

import argparse
import json
import time
from pathlib import Path

from retrieval_ext.index import brute_force_search, build_index, search

import numpy as np
from tabulate import tabulate

from plugins.benchmarking import machine_stamp, median_seconds, set_threads, write_results

K = 10


def clustered_vectors(count: int, dim: int, rng, spread: float = 1.0) -> np.ndarray:
    """``count`` unit vectors around ``count / 100`` random centres (float32, in chunks)."""
    centres = rng.standard_normal((max(count // 100, 1), dim)).astype(np.float32)
    vectors = np.empty((count, dim), dtype=np.float32)
    for start in range(0, count, 100_000):
        stop = min(start + 100_000, count)
        picks = rng.integers(len(centres), size=stop - start)
        noise = rng.standard_normal((stop - start, dim), dtype=np.float32) * spread
        chunk = centres[picks] + noise
        vectors[start:stop] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return vectors


def _latency(fn, queries, repeats):
    times = []
    for row in range(repeats):
        query = queries[row % len(queries)][None]
        start = time.perf_counter()
        fn(query)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def _throughput(fn, queries, repeats: int = 3):
    """Queries/s of the median of ``repeats`` batched searches of all ``queries`` (an odd
    ``repeats``: the median rate)."""
    return len(queries) / median_seconds(lambda: fn(queries), repeats, warmup=False)


def _searcher(index, gallery):
    if index is None:
        return lambda queries: brute_force_search(gallery, queries, K)
    return lambda queries: search(index, queries, K)


def _recall(ids, exact_ids) -> float:
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(ids, exact_ids, strict=True)]))


def benchmark(
    sizes, dim, threads, num_queries, nprobe, seed, latency_repeats, spread=1.0, progress=print
):
    import faiss  # noqa: F401  (loaded before set_threads, which pins its threads too)

    set_threads(threads)
    rng = np.random.default_rng(seed)
    rows = []
    for size in sizes:
        gallery = clustered_vectors(size, dim, rng, spread)
        picks = rng.integers(size, size=num_queries)
        queries = gallery[picks] + rng.standard_normal((num_queries, dim)).astype(np.float32) * (
            0.3 / np.sqrt(dim)
        )
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        methods = {"brute force (torch matmul)": (None, 0.0)}
        for kind in ("flat", "ivf"):
            start = time.perf_counter()
            index = build_index(gallery, kind, nprobe=nprobe, seed=seed)
            methods[
                "FAISS exact (IndexFlatIP)" if kind == "flat" else "FAISS IVF (IndexIVFFlat)"
            ] = (
                index,
                time.perf_counter() - start,
            )
        _, exact_ids = search(methods["FAISS exact (IndexFlatIP)"][0], queries, K)
        base = None
        for name, (index, build_s) in methods.items():
            fn = _searcher(index, gallery)
            fn(queries[:1])  # warm-up
            latency = _latency(fn, queries, latency_repeats)
            qps = _throughput(fn, queries)
            _, ids = fn(queries)
            recall = _recall(ids, exact_ids)
            if base is None:
                base = (latency, qps)
            row = {
                "gallery": size,
                "method": name,
                "build s": round(build_s, 3),
                "latency ms (batch 1)": round(latency * 1e3, 3),
                "queries/s (batch)": round(qps, 1),
                "latency vs brute force": round(latency / base[0], 3),
                "throughput vs brute force": round(qps / base[1], 3),
                "recall@10 vs exact": round(recall, 4),
            }
            if index is not None and hasattr(index, "nlist"):
                row["method"] += f", nlist {index.nlist}, nprobe {index.nprobe}"
            rows.append(row)
            progress(json.dumps(row))
        del gallery, methods
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000, 1000000])
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--queries", type=int, default=256)
    parser.add_argument("--latency-repeats", type=int, default=30)
    parser.add_argument("--nprobe", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--spread", type=float, default=1.0, help="cluster noise / centre norm")
    parser.add_argument("--out", default="runs/index_benchmark")
    args = parser.parse_args(argv)
    machine = machine_stamp()
    rows = benchmark(
        args.sizes,
        args.dim,
        args.threads,
        args.queries,
        args.nprobe,
        args.seed,
        args.latency_repeats,
        args.spread,
    )
    table = tabulate(rows, headers="keys", tablefmt="github")
    results = {"args": vars(args), "machine": machine, "rows": rows}
    write_results(Path(args.out), results, table + "\n", markdown_name="table.md")
    print(table)


if __name__ == "__main__":
    main()
