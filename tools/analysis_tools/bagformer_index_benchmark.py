"""Bag-wise retrieval past brute force: the indexes of retrieval_ext/multivector.py
against brute-force MaxSim over every image, on synthetic galleries. ``plaid``: the
PLAID-style index (centroid lists, centroid interaction, exact MaxSim on a shortlist);
``flat`` / ``hnsw`` / ``ivf`` / ``ivfpq``: :class:`TokenIndex`, FAISS token-level candidates
re-ranked by exact bag-wise MaxSim.

    python tools/analysis_tools/bagformer_index_benchmark.py --out runs/bagformer-index \
        [--gallery 10000 100000 1000000] [--kind easy hard] [--index plaid hnsw ivfpq]
        [--nprobe 2 4 8] [--rerank 256 1024] [--tokens-per-bag 64 256] [--ef-search 256]
        [--hnsw-neighbours 32] [--pq-bytes 16] [--refine-factor 4] [--refine-from faiss|store]
        [--centroids C] [--store-dtype float16] [--store memory|memmap] [--store-dir DIR]
        [--memory-gb 12] [--queries 30] [--tokens 37] [--dim 64]
        [--concepts 1024] [--hard-noise 2.0] [--hard-shift 0.5]
        [--chunk 50000] [--threads 1] [--build-threads 1] [--seed 0]

Gallery: synthetic and clustered (:class:`retrieval_ext.multivector.ClusteredGallery`), at
the embedded config's sizes by default (37 tokens of 64-d an image): each token is a
normalised mix of one of ``--concepts`` concept vectors and noise. It is produced in chunks
of ``--chunk`` images from a seed per chunk, so the brute-force reference regenerates each
chunk in float32 instead of holding the gallery. Queries: 8 tokens of a random image of
the first chunk plus noise, as bags. ``--kind hard`` makes the gallery weakly clustered
(token noise ``--hard-noise`` instead of 0.5 around the concepts) and shifts the queries
away from the image tokens (``--hard-shift`` times one fixed random direction added to
every bag before normalising), as text and image tokens of a real model are distributed
differently.

Search: ``--index`` settings swept: ``plaid`` every ``--nprobe`` x ``--rerank``; ``flat``
every ``--tokens-per-bag``; ``hnsw`` those x ``--ef-search``; ``ivf`` and ``ivfpq`` those x
``--nprobe`` (``--centroids`` cells). ``ivfpq`` codes a token in ``--pq-bytes`` bytes; with
``--refine-factor`` > 0 ``refine-factor`` times the tokens asked for are re-scored exactly,
from FAISS's ``IndexRefineFlat`` float32 copy (``--refine-from faiss``) or from the stored
float16 tokens (``--refine-from store``: no copy); with 0 the codes alone pick the tokens.
Either way the candidate images are re-ranked by exact bag-wise MaxSim from the stored
tokens, kept in memory or, with ``--store memmap``, in a float16 ``np.memmap`` file under
``--store-dir`` (deleted after the setting), paged in by the operating system. The file is
searched right after it is written, so its pages are still in the page cache (where memory
allows): a memmap row's latency is that of reading cached pages, not the disk.

Measured: latency of one query at a time, ``--threads`` intra-op threads, median over the
queries (the query's bags are given: text encoding is not part of it); brute force = the sum
over chunks of exact MaxSim of the query against the chunk (generation not timed); every
query is scored exactly, so ``--queries`` is the sample of queries of the recall reference.
Recall@10 vs exact: share of the exact top 10 that the index returns (``recall_goal_0.95``:
at least 0.95); source@1: share of queries whose source image ranks first.

Memory bound: before any work, each (index, N) setting's memory is estimated (the index
with its in-memory store, the generation and scoring of one chunk, and one query's exact
stage: its candidates' tokens copied to float32 with their dot products, for at most
``min(N, 8 bags x max(--tokens-per-bag))`` candidates, ``min(N, max(--rerank))`` for
``plaid``) and a setting above ``--memory-gb`` is refused with an error naming its sizes.

Protocol for the large galleries (24 GB machine). At the full sizes of the model (257
tokens of 256-d an image: ``--tokens 257 --dim 256 --chunk 2000``) 1M images are 257M tokens,
132 GB in float16, which no setting here holds; 10k images (2.6M tokens) fit every index
kind, 100k (25.7M tokens) fit ``ivfpq --refine-from store --store memmap`` (codes and ids
about 1 GB in memory, tokens 13 GB on disk). The 10k / 100k / 1M sweep therefore runs at the
embedded sizes (37 tokens of 64-d: 37M tokens at 1M, 4.7 GB in float16): ``hnsw`` and
``ivfpq`` at 10k and 100k with in-memory float16 stores, and at 1M ``ivfpq --refine-from
store --store memmap`` (codes and ids 0.9 GB in memory, the tokens 4.7 GB on disk), so that
no float32 copy of the 37M tokens is held; the full sizes stay available through the flags
above.
Writes results.json (every row, its memory estimate and the peak resident memory, the
settings and the machine stamp) and report.md.
"""

import argparse
import itertools
import os
import resource
import shutil
import statistics
import sys
import time
from pathlib import Path

from retrieval_ext.multivector import (
    STORE_DTYPES,
    TOKEN_INDEX_KINDS,
    ClusteredGallery,
    MultiVectorIndex,
    TokenIndex,
    exact_search_chunks,
    exact_stage_bytes,
    make_queries,
)

import numpy as np
import torch
from tabulate import tabulate

from plugins.benchmarking import machine_stamp, set_threads, write_results

QUERY_BAGS = 8  # make_queries' bags per query


def brute_force(gallery, queries, k=10):
    """Exact top ``k`` id sets, the first id and the per-query seconds of brute-force
    MaxSim over the gallery's chunks."""
    best, seconds = exact_search_chunks(gallery.chunks(), [bags for _, bags in queries], k)
    return [set(ids.tolist()) for ids in best], [ids[0].item() for ids in best], seconds


def memory_bytes(index_kind: str, n: int, args) -> int:
    """Bytes one setting holds in memory at once, estimated: the index (with the tokens of
    its exact stage unless they are in a memmap file), the generation and brute-force
    scoring of one float32 chunk, and one query's exact stage at its most candidates."""
    tokens = n * args.tokens
    chunk = min(args.chunk, n) * args.tokens
    reference = 3 * chunk * args.dim * 4 + QUERY_BAGS * chunk * 4  # picks, noise, normalised
    if index_kind == "plaid":
        store = tokens * args.dim * np.dtype(STORE_DTYPES[args.store_dtype]).itemsize
        search = exact_stage_bytes(min(n, max(args.rerank)), args.tokens, args.dim, QUERY_BAGS)
        return store + tokens * (4 + 3 * 8) + reference + search  # codes; ids, pairs, sort
    candidates = min(n, QUERY_BAGS * max(args.tokens_per_bag))  # each bag's tokens' images
    search = exact_stage_bytes(candidates, args.tokens, args.dim, QUERY_BAGS)
    index = TokenIndex.memory_bytes(
        index_kind,
        n,
        args.tokens,
        args.dim,
        hnsw_neighbours=args.hnsw_neighbours,
        pq_bytes=args.pq_bytes,
        refine_factor=args.refine_factor,
        refine_from=args.refine_from,
        store_dtype=args.store_dtype,
        in_memory_store=args.store == "memory" or index_kind == "plaid",
    )
    return index + reference + search


def check_memory(args) -> None:
    """Refuse, before any work, a setting whose :func:`memory_bytes` exceeds
    ``--memory-gb``, or whose memmap file would not fit the free disk; the error names the
    sizes and what shrinks them."""
    for index_kind, n in itertools.product(args.index, args.gallery):
        need = memory_bytes(index_kind, n, args)
        if need > args.memory_gb * 2**30:
            raise ValueError(
                f"--index {index_kind} at --gallery {n}: {n:,} images x {args.tokens} tokens x "
                f"{args.dim} dims (--chunk {args.chunk}) need about {need / 2**30:.1f} GiB in "
                f"memory, above --memory-gb {args.memory_gb}; shrink it with --store memmap, "
                "--index ivfpq --refine-factor 0, fewer --tokens, a lower --dim or a smaller "
                "--chunk"
            )
    if args.store != "memmap":
        return
    if args.store_dtype != "float16":
        raise ValueError("--store memmap keeps float16 tokens: pass --store-dtype float16")
    store_dir = args.store_dir or args.out
    store_dir.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(store_dir).free
    for n in args.gallery:  # one setting's file at a time
        need = n * args.tokens * args.dim * 2
        if need > free:
            raise ValueError(
                f"--store memmap at --gallery {n}: {n:,} images x {args.tokens} tokens x "
                f"{args.dim} dims need {need / 2**30:.1f} GiB of float16 on disk, "
                f"{free / 2**30:.1f} GiB free in {store_dir}"
            )


def build(gallery, args, kind="plaid", store_path=None):
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
                    args.dim,
                    args.tokens,
                    kind,
                    args.centroids,
                    hnsw_neighbours=args.hnsw_neighbours,
                    pq_bytes=args.pq_bytes,
                    refine_factor=args.refine_factor,
                    refine_from=args.refine_from,
                    store_dtype=args.store_dtype,
                    store_path=store_path,
                    capacity=gallery.count if store_path else None,
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


def recall_at_k(found_ids, reference: set) -> float:
    """Share of the exact top k (``reference``) among the ids an index returned."""
    return len(reference & {int(i) for i in found_ids}) / len(reference)


def evaluate(index, queries, exact, setting: dict, k: int = 10) -> dict:
    """Latency (median seconds, one query at a time), recall@k against the exact top k,
    source@1 and the mean number of candidates of one search setting."""
    index.search(queries[0][1], k, **setting)  # warm-up
    times, found, source, candidates = [], [], [], []
    for (image, bags), reference in zip(queries, exact, strict=True):
        start = time.perf_counter()
        _, ids, count = index.search(bags, k, **setting)
        times.append(time.perf_counter() - start)
        found.append(recall_at_k(ids.tolist(), reference))
        source.append(bool(len(ids)) and ids[0].item() == image)
        candidates.append(count)
    return {
        "latency": statistics.median(times),
        "recall": statistics.fmean(found),
        "source": statistics.fmean(source),
        "candidates": statistics.fmean(candidates),
    }


def peak_rss_gb() -> float:
    """The process's peak resident memory so far, GiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


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
    parser.add_argument("--hnsw-neighbours", type=int, default=32)
    parser.add_argument("--pq-bytes", type=int, default=16, help="ivfpq: bytes per token code")
    parser.add_argument(
        "--refine-factor", type=int, default=4, help="ivfpq: IndexRefineFlat's k_factor; 0: none"
    )
    parser.add_argument(
        "--refine-from",
        default="faiss",
        choices=["faiss", "store"],
        help="ivfpq: re-score from IndexRefineFlat's float32 copy or from the stored tokens",
    )
    parser.add_argument("--hard-noise", type=float, default=2.0)
    parser.add_argument("--hard-shift", type=float, default=0.5)
    parser.add_argument("--nprobe", type=int, nargs="+", default=[2, 4, 8])
    parser.add_argument("--rerank", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--centroids", type=int, default=None, help="default: by token count")
    parser.add_argument("--store-dtype", default="float32", choices=["float32", "float16"])
    parser.add_argument(
        "--store",
        default="memory",
        choices=["memory", "memmap"],
        help="TokenIndex: where the exact stage's tokens live (memmap: a float16 file)",
    )
    parser.add_argument("--store-dir", type=Path, default=None, help="memmap files (default --out)")
    parser.add_argument("--memory-gb", type=float, default=12.0)
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
    check_memory(args)
    import faiss  # noqa: F401  (loaded before set_threads, which pins its threads too)

    set_threads(args.threads)
    machine = machine_stamp()
    store_dir = args.store_dir or args.out
    store_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for kind, n in itertools.product(args.kind, args.gallery):
        noise, shift = (args.hard_noise, args.hard_shift) if kind == "hard" else (0.5, 0.0)
        gallery = ClusteredGallery(
            n, args.tokens, args.dim, args.concepts, args.chunk, args.seed, noise
        )
        exact = None
        for index_kind in args.index:
            print(f"{kind} N = {n:,}: building {index_kind}", flush=True)
            memmap = args.store == "memmap" and index_kind != "plaid"
            store_path = store_dir / f"tokens-{kind}-{n}-{index_kind}.npy" if memmap else None
            index, first, build_seconds = build(gallery, args, index_kind, store_path)
            if exact is None:
                queries = make_queries(first, args.queries, args.seed, shift, QUERY_BAGS)
                print(f"{kind} N = {n:,}: brute force over {len(queries)} queries", flush=True)
                exact, exact_first, exact_seconds = brute_force(gallery, queries)
            brute = statistics.median(exact_seconds)
            exact_source = statistics.fmean(
                f == image for f, (image, _) in zip(exact_first, queries, strict=True)
            )
            for setting in settings_of(index_kind, args):
                measured = evaluate(index, queries, exact, setting)
                rows.append(
                    {
                        "gallery": kind,
                        "index": index_kind,
                        "N": n,
                        "tokens": args.tokens,
                        "dim": args.dim,
                        "store": "memmap" if memmap else "memory",
                        "centroids": (
                            index.num_centroids if index_kind == "plaid" else index.cells
                        ),
                        "nprobe": setting.get("nprobe"),
                        "rerank": setting.get("rerank"),
                        "tokens_per_bag": setting.get("tokens_per_bag"),
                        "ef_search": setting.get("ef_search"),
                        "refine_factor": args.refine_factor if index_kind == "ivfpq" else None,
                        "refine_from": args.refine_from if index_kind == "ivfpq" else None,
                        "build_s": build_seconds,
                        "latency_ms": 1000 * measured["latency"],
                        "brute_force_ms": 1000 * brute,
                        "speed-up": brute / measured["latency"],
                        "recall@10_vs_exact": measured["recall"],
                        "recall_goal_0.95": measured["recall"] >= 0.95,
                        "source@1": measured["source"],
                        "exact source@1": exact_source,
                        "mean_candidates": measured["candidates"],
                        "memory_estimate_gb": memory_bytes(index_kind, n, args) / 2**30,
                        "peak_rss_gb": peak_rss_gb(),
                    }
                )
                print(rows[-1], flush=True)
            del index
            if store_path is not None:
                store_path.unlink()
    settings = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    settings["load_average"] = os.getloadavg()
    table = tabulate(rows, headers="keys", tablefmt="github", floatfmt=".3f")
    results = {"settings": settings, "machine": machine, "rows": rows, "peak_rss_gb": peak_rss_gb()}
    write_results(args.out, results, table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
