"""Retrieval at scale: exported embeddings searched through FAISS.

CLIP4Clip stores one L2-normalised vector per video and scores by inner product (cosine),
so a gallery is a matrix and a query is a maximum-inner-product search. Three ways to run
it, compared by ``tools/analysis_tools/retrieval_index_benchmark.py``:
- brute force: ``queries @ gallery.T`` and a top-k (what ``compute_sim_matrix`` does);
- ``flat``: FAISS ``IndexFlatIP``, exact;
- ``ivf``: FAISS ``IndexIVFFlat`` (inner product), approximate: k-means cells, ``nprobe``
  of them searched; ``hnsw``: FAISS ``IndexHNSWFlat`` (inner product), approximate.

Exports (:func:`export_embeddings`) are ``videos.npy`` / ``texts.npy`` (float32, rows
L2-normalised) and ``meta.json`` (video ids, captions, the ground-truth maps, the config).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from retrieval_ext.tasks.text_video_retrieval import CONVENTIONS, RECALL_AT, rank_summary

import numpy as np

INDEX_KINDS = ("flat", "ivf", "hnsw")


def _as_float32(x) -> np.ndarray:
    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if x.ndim != 2:
        raise ValueError(f"expected a [N, D] matrix, got shape {x.shape}")
    return x


def build_index(
    vectors,
    kind: str = "flat",
    nlist: int | None = None,
    nprobe: int = 16,
    hnsw_m: int = 32,
    ef_search: int = 128,
    train_size: int | None = None,
    seed: int = 0,
):
    """A FAISS inner-product index holding ``vectors`` (rows in id order).

    Args:
        kind: ``flat`` (exact), ``ivf`` or ``hnsw`` (approximate).
        nlist: IVF cells; default ``4 * sqrt(N)`` capped to [1, 4096] and to N / 39 so
            that k-means has 39 points a cell.
        nprobe: IVF cells searched per query.
        hnsw_m, ef_search: HNSW graph degree and search breadth.
        train_size: IVF k-means sample (default ``min(N, 64 * nlist)``), drawn with ``seed``.
    """
    import faiss

    if kind not in INDEX_KINDS:
        raise ValueError(f"unknown index kind {kind!r}; expected one of {INDEX_KINDS}")
    vectors = _as_float32(vectors)
    count, dim = vectors.shape
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = ef_search
    else:
        nlist = nlist or int(min(4096, max(1.0, 4 * math.sqrt(count))))
        nlist = max(1, min(nlist, count // 39 or 1))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
        sample = min(count, train_size or 64 * nlist)
        rows = np.random.default_rng(seed).choice(count, size=sample, replace=False)
        index.train(vectors[np.sort(rows)])
        index.nprobe = min(nprobe, nlist)
    index.add(vectors)
    return index


def search(index, queries, k: int):
    """``(scores [Q, k], ids [Q, k])``, best first; ids are -1 where fewer than k found."""
    return index.search(_as_float32(queries), k)


def brute_force_search(gallery, queries, k: int):
    """``(scores, ids)`` of the top ``k`` by a dense matrix product (torch, exact)."""
    import torch

    scores = torch.from_numpy(_as_float32(queries)) @ torch.from_numpy(_as_float32(gallery)).T
    top = torch.topk(scores, k=min(k, scores.shape[1]), dim=1)
    return top.values.numpy(), top.indices.numpy()


def ranks_from_search(ids: np.ndarray, targets: list) -> np.ndarray:
    """0-based rank of the best target of each query in its result list; ``len(row)`` when
    none of its targets was returned (so R@K for K <= len(row) stays exact)."""
    ranks = np.full(len(ids), ids.shape[1], dtype=np.int64)
    for row, wanted in enumerate(targets):
        hits = np.flatnonzero(np.isin(ids[row], np.atleast_1d(wanted)))
        if hits.size:
            ranks[row] = hits[0]
    return ranks


def ranks_of_groups_from_search(ids: np.ndarray, groups: np.ndarray, targets) -> np.ndarray:
    """0-based rank of each query's target group, when results are ranked by group (a
    group's score is its best member's): the number of distinct groups whose first result
    comes before the target's first; when the target group is absent, the number of
    distinct groups returned (a lower bound)."""
    ranks = np.empty(len(ids), dtype=np.int64)
    for row, target in enumerate(targets):
        returned = groups[ids[row][ids[row] >= 0]]
        _, first = np.unique(returned, return_index=True)
        order = returned[np.sort(first)]  # distinct groups, best first
        hits = np.flatnonzero(order == target)
        ranks[row] = hits[0] if hits.size else len(order)
    return ranks


def index_metrics(
    videos,
    texts,
    txt2video: dict,
    video2txt: dict,
    kind: str = "flat",
    convention: str = "clip4clip",
    **kw,
):
    """The task's metrics computed through FAISS searches in both directions.

    Text-to-video searches a video index with every caption; video-to-text searches a
    caption index with every video, and ranks videos by their best caption
    (``convention="clip4clip"``) or takes the rank of the video's best caption
    (``"lavis"``), as :func:`retrieval_ext.tasks.text_video_retrieval.retrieval_metrics`.
    With ``kind="flat"`` the searches return full rankings and every metric equals the
    task's; an approximate index returns ``max(RECALL_AT)`` results, so median and mean
    rank are lower bounds there.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"metrics convention must be one of {CONVENTIONS}, got {convention!r}")
    videos, texts = _as_float32(videos), _as_float32(texts)
    several = any(len(v) > 1 for v in video2txt.values())
    out = {}
    for prefix, gallery, queries in (("t2v", videos, texts), ("v2t", texts, videos)):
        k = len(gallery) if kind == "flat" else min(len(gallery), max(RECALL_AT))
        _, ids = search(build_index(gallery, kind, **kw), queries, k)
        if prefix == "t2v":
            ranks = ranks_from_search(ids, [txt2video[i] for i in range(len(texts))])
            lower_median = convention == "clip4clip" and several
        elif convention == "clip4clip":
            groups = np.array([txt2video[i] for i in range(len(texts))])
            ranks = ranks_of_groups_from_search(ids, groups, range(len(videos)))
            lower_median = False
        else:
            ranks = ranks_from_search(ids, [video2txt[i] for i in range(len(videos))])
            lower_median = False
        out.update(rank_summary(ranks, prefix, lower_median))
    return out


def export_embeddings(model, data_loader, out_dir, config: dict | None = None) -> Path:
    """Write the video and caption embeddings of an evaluation loader to ``out_dir``."""
    from retrieval_ext.datasets.video_text import video_ids

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dataset = data_loader.dataset
    model.eval()
    videos = model.encode_video_loader(data_loader).numpy().astype(np.float32)
    texts = model.encode_texts(list(dataset.text)).numpy().astype(np.float32)
    np.save(out_dir / "videos.npy", videos)
    np.save(out_dir / "texts.npy", texts)
    meta = {
        "video_ids": video_ids(dataset),
        "texts": list(dataset.text),
        "txt2video": [dataset.txt2video[i] for i in range(len(dataset.text))],
        "video2txt": [dataset.video2txt[i] for i in range(len(dataset.entries))],
        "dim": int(videos.shape[1]),
        "config": config or {},
    }
    (out_dir / "meta.json").write_text(json.dumps(meta, indent=1))
    return out_dir


def load_embeddings(folder):
    """``(videos, texts, txt2video, video2txt, meta)`` from an :func:`export_embeddings`
    folder; errors name the missing file."""
    folder = Path(folder)
    for name in ("videos.npy", "texts.npy", "meta.json"):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"embedding export incomplete: {folder / name} is missing")
    meta = json.loads((folder / "meta.json").read_text())
    videos = np.load(folder / "videos.npy")
    texts = np.load(folder / "texts.npy")
    txt2video = dict(enumerate(meta["txt2video"]))
    video2txt = dict(enumerate(meta["video2txt"]))
    return videos, texts, txt2video, video2txt, meta
