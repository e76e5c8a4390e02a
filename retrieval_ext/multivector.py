"""Bag-wise (MaxSim) text-to-image search past brute force: two indexes.

:class:`TokenIndex` (ColBERT-style, on FAISS): every image token in one FAISS index
(``flat`` exact, ``hnsw`` graph, ``ivf`` k-means cells, ``ivfpq`` product-quantised cells,
their tokens re-scored exactly by ``IndexRefineFlat``, or from the stored float16 tokens
with ``refine_from="store"`` so that no float32 copy sits in memory, or, with
``refine_factor=0``, ranked by their codes alone). A query's bags
each fetch their ``tokens_per_bag`` nearest tokens; the images owning them are the
candidates, and every candidate is scored by exact bag-wise MaxSim from the stored tokens.
An image whose tokens no bag retrieves is never scored, so recall depends on
``tokens_per_bag`` and the FAISS index's own search effort (``nprobe``, ``ef_search``); no
centroid stands in for a token when images are scored.

:class:`MultiVectorIndex` (PLAID-style): every image token is assigned to one of
``centroids`` k-means centroids (FAISS); each centroid keeps the list of images owning a
token assigned to it. A query (its bags) searches in three stages:

1. **Probe**: each bag's ``nprobe`` nearest centroids (by cosine with the bag).
2. **Centroid interaction**: an image's approximate score is the sum over bags of the
   best centroid score among the bag's probed centroids that the image holds (0 when it
   holds none), i.e. MaxSim with every token replaced by its centroid, pruned to the
   probed centroids. It runs over the probed lists only, never over the whole gallery.
3. **Exact re-rank**: the ``rerank`` best images by approximate score are scored by exact
   bag-wise MaxSim (s_t2i, float32) from the stored token embeddings; the top ``k`` win.

With ``nprobe`` = every centroid and ``rerank`` = every image the result is exactly brute
force MaxSim (tested). Tokens can be stored as float16 (``store_dtype``) to halve memory;
the exact stage then computes in float32 from the float16 values.

Images are added in chunks (``add``), so a gallery larger than memory in float32 can be
indexed as it is produced; ``train`` fits the centroids on a sample first. A
:class:`TokenIndex` can keep its tokens for the exact stage in a float16 ``np.memmap`` file
(``store_path``, ``capacity`` images) instead of memory: the operating system pages in the
candidates' tokens. A store searched right after it was written is still in the page cache, so
its searches read memory, not the disk; a search that has to read the disk is slower.
:meth:`TokenIndex.memory_bytes` estimates what an index holds in memory, so that a setting can
be refused before it is built; a search adds its exact stage (:func:`exact_stage_bytes`: the
candidates' tokens copied to float32 and their dot products with the bags): at the model's
full size (257 tokens of 256-d), 3,000 candidates x 257 x 256 x 4 bytes = 0.79 GB of tokens.

:class:`ClusteredGallery` and :func:`make_queries` generate synthetic galleries and queries for
the index benchmark and the tests: clustered token embeddings produced chunk by chunk from a
seed, so a gallery larger than memory can be indexed and scored exactly without being held.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from retrieval_ext.models.bagging import bagwise_similarity

import numpy as np
import torch
import torch.nn.functional as F

STORE_DTYPES = {"float32": np.float32, "float16": np.float16}
TOKEN_INDEX_KINDS = ("flat", "hnsw", "ivf", "ivfpq")


def exact_stage_bytes(candidates: int, tokens_per_image: int, dim: int, bags: int) -> int:
    """Bytes one query's exact stage allocates: its ``candidates`` images' stored tokens
    copied to float32 and their dot products with the query's ``bags`` (float32)."""
    values = candidates * tokens_per_image
    return int(values * dim * 4 + bags * values * 4)


def default_centroids(num_tokens: int) -> int:
    """A power of two near ``4 * sqrt(num_tokens)``, in [16, 4096]."""
    return int(2 ** min(12, max(4, round(math.log2(4 * math.sqrt(max(num_tokens, 1)))))))


class MultiVectorIndex:
    """Image token embeddings (L2-normalised, ``tokens_per_image`` of ``dim`` each),
    searchable by the bags of a text query.

    Args:
        dim: Token width.
        tokens_per_image: Tokens of every image (V).
        centroids: k-means centroids; ``None``: :func:`default_centroids` of the sample
            given to :meth:`train`.
        store_dtype: ``float32`` or ``float16`` storage for the exact stage.
        seed: k-means seed.
    """

    def __init__(
        self,
        dim: int,
        tokens_per_image: int,
        centroids: int | None = None,
        store_dtype: str = "float32",
        seed: int = 0,
    ):
        if store_dtype not in STORE_DTYPES:
            raise ValueError(f"store_dtype {store_dtype!r}: expected one of {list(STORE_DTYPES)}")
        self.dim, self.tokens_per_image = int(dim), int(tokens_per_image)
        self.num_centroids, self.store_dtype, self.seed = centroids, store_dtype, seed
        self.centroids: np.ndarray | None = None
        self._assigner = None  # FAISS index over the centroids, set by train
        self._chunks: list[np.ndarray] = []  # stored tokens, (n, V, dim) each
        self._codes: list[np.ndarray] = []  # centroid of each token, (n, V) each
        self._offsets = [0]
        self._lists = None  # (starts, images): images of centroid c = images[starts[c]:starts[c+1]]

    @property
    def num_images(self) -> int:
        return self._offsets[-1]

    @classmethod
    def build(cls, image_tokens, centroids: int | None = None, **options) -> MultiVectorIndex:
        """Index an in-memory ``(N, V, dim)`` gallery, trained on all its tokens."""
        tokens = _tokens(image_tokens)
        index = cls(tokens.shape[2], tokens.shape[1], centroids, **options)
        index.train(tokens.reshape(-1, tokens.shape[2]))
        index.add(tokens)
        return index

    def train(self, sample) -> None:
        """Fit the centroids on a ``(M, dim)`` sample of image tokens."""
        import faiss

        sample = np.ascontiguousarray(np.asarray(sample, dtype=np.float32))
        if sample.ndim != 2 or sample.shape[1] != self.dim:
            raise ValueError(f"training sample must be (M, {self.dim}), got {sample.shape}")
        count = self.num_centroids or default_centroids(len(sample))
        if len(sample) < count:
            raise ValueError(f"{count} centroids need at least {count} sample tokens")
        kmeans = faiss.Kmeans(
            self.dim, count, niter=20, seed=self.seed, spherical=True, max_points_per_centroid=64
        )
        kmeans.train(sample)
        self.centroids = kmeans.centroids.copy()
        self.num_centroids = count
        self._assigner = faiss.IndexFlatIP(self.dim)
        self._assigner.add(self.centroids)

    def add(self, image_tokens) -> None:
        """Append ``(n, V, dim)`` images (ids continue from the images already added)."""
        if self.centroids is None:
            raise RuntimeError("MultiVectorIndex.add before train: fit the centroids first")
        tokens = _tokens(image_tokens)
        if tokens.shape[1:] != (self.tokens_per_image, self.dim):
            raise ValueError(
                f"images must be (n, {self.tokens_per_image}, {self.dim}), got {tokens.shape}"
            )
        flat = np.ascontiguousarray(tokens.reshape(-1, self.dim))
        _, codes = self._assigner.search(flat, 1)
        self._codes.append(codes.reshape(len(tokens), self.tokens_per_image).astype(np.int32))
        self._chunks.append(tokens.astype(STORE_DTYPES[self.store_dtype]))
        self._offsets.append(self._offsets[-1] + len(tokens))
        self._lists = None

    def _inverted_lists(self):
        if self._lists is None:
            codes = np.concatenate(self._codes).astype(np.int64)
            images = np.repeat(np.arange(self.num_images, dtype=np.int64), self.tokens_per_image)
            # one (centroid, image) entry per pair, grouped by centroid
            pairs = np.unique(codes.reshape(-1) * self.num_images + images)
            counts = np.bincount(pairs // self.num_images, minlength=self.num_centroids)
            starts = np.concatenate([[0], np.cumsum(counts)])
            self._lists = (starts, (pairs % self.num_images).astype(np.int64))
        return self._lists

    def tokens_of(self, ids: np.ndarray) -> torch.Tensor:
        """Stored tokens of images ``ids`` as a float32 ``(len(ids), V, dim)`` tensor."""
        return _stored_tokens(self, ids)

    def approximate_scores(self, bags: np.ndarray, nprobe: int):
        """``(candidate ids, approximate scores)`` from the probed centroids' lists."""
        starts, images = self._inverted_lists()
        # torch, not numpy: its BLAS honours torch.set_num_threads (numpy's spawns its own)
        centroid_scores = (torch.from_numpy(bags) @ torch.from_numpy(self.centroids).t()).numpy()
        nprobe = min(nprobe, self.num_centroids)
        total = np.zeros(self.num_images, dtype=np.float32)
        candidate = np.zeros(self.num_images, dtype=bool)
        seen = np.zeros(self.num_images, dtype=bool)
        for scores in centroid_scores:
            probed = np.argpartition(-scores, nprobe - 1)[:nprobe]
            touched = []
            # best centroid first: an image's first probed list gives its best score
            for c in probed[np.argsort(-scores[probed])]:
                owners = images[starts[c] : starts[c + 1]]
                new = owners[~seen[owners]]
                seen[new] = True
                total[new] += scores[c]
                touched.append(new)
            touched = np.concatenate(touched)
            seen[touched] = False
            candidate[touched] = True
        candidates = np.nonzero(candidate)[0]
        return candidates, total[candidates]

    def search(self, bags, k: int, nprobe: int = 4, rerank: int = 256):
        """Top ``k`` images of one query (``(B, dim)`` normalised bags, padding removed):
        ``(exact MaxSim scores, image ids, number of candidates)``."""
        bags = torch.as_tensor(bags, dtype=torch.float32)
        if bags.ndim != 2 or bags.shape[1] != self.dim or not len(bags):
            shape = tuple(bags.shape)
            raise ValueError(f"a query's bags must be (B >= 1, {self.dim}), got {shape}")
        if self.centroids is None or not self.num_images:
            raise RuntimeError("MultiVectorIndex.search before train and add: the index is empty")
        candidates, approx = self.approximate_scores(bags.numpy(), nprobe)
        if len(candidates) > rerank:
            keep = np.argpartition(-approx, rerank - 1)[:rerank]
            shortlist = candidates[keep]
        else:
            shortlist = candidates
        mask = torch.ones(1, len(bags), dtype=torch.bool)
        scores, _ = bagwise_similarity(
            bags[None], mask, self.tokens_of(shortlist), directions="t2i"
        )
        top = scores[0].topk(min(k, len(shortlist)))
        return top.values, torch.from_numpy(shortlist)[top.indices], len(candidates)


def _stored_tokens(index, ids: np.ndarray) -> torch.Tensor:
    """Tokens of images ``ids`` from an index's stored chunks (or its memmap file), as
    float32."""
    if getattr(index, "_memmap", None) is not None:
        order = np.argsort(ids)  # ascending reads: the file is paged in sequentially
        out = np.empty((len(ids), index.tokens_per_image, index.dim), dtype=np.float32)
        out[order] = index._memmap[ids[order]]
        return torch.from_numpy(out)
    chunk = np.searchsorted(index._offsets, ids, side="right") - 1
    out = np.empty((len(ids), index.tokens_per_image, index.dim), dtype=np.float32)
    for c in np.unique(chunk):
        rows = np.nonzero(chunk == c)[0]
        out[rows] = index._chunks[c][ids[rows] - index._offsets[c]]
    return torch.from_numpy(out)


def _tokens(image_tokens) -> np.ndarray:
    tokens = np.asarray(image_tokens, dtype=np.float32)
    if tokens.ndim != 3:
        raise ValueError(f"image tokens must be (N, V, d), got shape {tuple(tokens.shape)}")
    return tokens


class TokenIndex:
    """Every image token in a FAISS inner-product index; exact bag-wise re-rank of the
    images the query's bags retrieve (see the module docstring).

    Args:
        dim: Token width.
        tokens_per_image: Tokens of every image (V); image ``i`` owns tokens
            ``i * V .. i * V + V - 1``.
        kind: ``flat`` | ``hnsw`` | ``ivf`` | ``ivfpq``.
        cells: k-means cells of ``ivf`` / ``ivfpq`` (``None``: :func:`default_centroids`
            of the training sample).
        hnsw_neighbours: graph degree of ``hnsw`` (FAISS's M).
        pq_bytes: bytes per token of ``ivfpq`` codes (divides ``dim``).
        refine_factor: ``ivfpq`` fetches ``refine_factor`` times the tokens asked for and
            re-scores them exactly; 0: the tokens are ranked by their codes alone.
        refine_from: where ``ivfpq`` re-scores them: ``faiss`` (``IndexRefineFlat``, which
            keeps a float32 copy of every token) or ``store`` (the exact stage's stored
            tokens, read by token id: no copy, and paged in from a memmap store).
        store_dtype: ``float32`` or ``float16`` storage for the exact stage.
        store_path: a file for that storage as an ``np.memmap`` (float16 only) instead of
            memory; needs ``capacity``.
        capacity: the most images a memmap store holds.
        seed: k-means seed.
    """

    def __init__(
        self,
        dim: int,
        tokens_per_image: int,
        kind: str = "hnsw",
        cells: int | None = None,
        hnsw_neighbours: int = 32,
        pq_bytes: int = 16,
        refine_factor: int = 4,
        refine_from: str = "faiss",
        store_dtype: str = "float16",
        store_path: str | Path | None = None,
        capacity: int | None = None,
        seed: int = 0,
    ):
        if kind not in TOKEN_INDEX_KINDS:
            raise ValueError(f"kind {kind!r}: expected one of {list(TOKEN_INDEX_KINDS)}")
        if store_dtype not in STORE_DTYPES:
            raise ValueError(f"store_dtype {store_dtype!r}: expected one of {list(STORE_DTYPES)}")
        if kind == "ivfpq" and dim % pq_bytes:
            raise ValueError(f"pq_bytes={pq_bytes} must divide the token width {dim}")
        if refine_from not in ("faiss", "store"):
            raise ValueError(f"refine_from {refine_from!r}: expected 'faiss' or 'store'")
        if store_path is not None and (store_dtype != "float16" or not capacity):
            raise ValueError(
                f"store_path={str(store_path)!r} needs store_dtype='float16' and a capacity "
                f"(images), got store_dtype={store_dtype!r}, capacity={capacity}"
            )
        self.dim, self.tokens_per_image, self.kind = int(dim), int(tokens_per_image), kind
        self.cells = cells if kind in ("ivf", "ivfpq") else None
        self.hnsw_neighbours, self.pq_bytes = hnsw_neighbours, pq_bytes
        self.refine_factor, self.store_dtype, self.seed = refine_factor, store_dtype, seed
        self.refine_from = refine_from
        self._faiss = None if kind in ("ivf", "ivfpq") else self._untrained_index()
        self._chunks: list[np.ndarray] = []
        self._offsets = [0]
        self._memmap = self._store_path = None
        if store_path is not None:
            # written through file writes (page cache), read through a read-only map: only
            # the candidates' pages enter the process's memory
            self._store_path = Path(store_path)
            shape = (int(capacity), self.tokens_per_image, self.dim)
            np.lib.format.open_memmap(self._store_path, mode="w+", dtype=np.float16, shape=shape)
            self._memmap = np.load(self._store_path, mmap_mode="r")

    @staticmethod
    def memory_bytes(
        kind: str,
        images: int,
        tokens_per_image: int,
        dim: int,
        *,
        hnsw_neighbours: int = 32,
        pq_bytes: int = 16,
        refine_factor: int = 4,
        refine_from: str = "faiss",
        store_dtype: str = "float16",
        in_memory_store: bool = True,
    ) -> int:
        """Bytes a :class:`TokenIndex` holds in memory, estimated: FAISS's part (float32
        tokens for ``flat`` / ``hnsw`` / ``ivf``, plus the graph's links for ``hnsw``;
        codes and 8-byte ids for ``ivfpq``, plus the float32 copy of ``IndexRefineFlat``
        when ``refine_factor`` > 0 and ``refine_from`` is ``faiss``) and the store of the
        exact stage when it is in memory. A search allocates :func:`exact_stage_bytes` on
        top, for at most ``min(images, bags x tokens_per_bag)`` candidates."""
        tokens = images * tokens_per_image
        if kind == "ivfpq":
            copy = refine_factor and refine_from == "faiss"
            index = tokens * (pq_bytes + 8) + (tokens * dim * 4 if copy else 0)
        else:
            index = tokens * dim * 4
            if kind == "hnsw":
                index += tokens * hnsw_neighbours * 2 * 4  # level-0 links, int32
            elif kind == "ivf":
                index += tokens * 8
        store = tokens * dim * np.dtype(STORE_DTYPES[store_dtype]).itemsize
        return int(index + (store if in_memory_store else 0))

    @property
    def num_images(self) -> int:
        return self._offsets[-1]

    @classmethod
    def build(cls, image_tokens, kind: str = "hnsw", **options) -> TokenIndex:
        """Index an in-memory ``(N, V, dim)`` gallery (IVF kinds trained on all tokens)."""
        tokens = _tokens(image_tokens)
        index = cls(tokens.shape[2], tokens.shape[1], kind, **options)
        if kind in ("ivf", "ivfpq"):
            index.train(tokens.reshape(-1, tokens.shape[2]))
        index.add(tokens)
        return index

    def _untrained_index(self, cells: int | None = None):
        import faiss

        if self.kind == "flat":
            return faiss.IndexFlatIP(self.dim)
        if self.kind == "hnsw":
            return faiss.IndexHNSWFlat(self.dim, self.hnsw_neighbours, faiss.METRIC_INNER_PRODUCT)
        quantizer = faiss.IndexFlatIP(self.dim)
        if self.kind == "ivf":
            return faiss.IndexIVFFlat(quantizer, self.dim, cells, faiss.METRIC_INNER_PRODUCT)
        coarse = faiss.IndexIVFPQ(
            quantizer, self.dim, cells, self.pq_bytes, 8, faiss.METRIC_INNER_PRODUCT
        )
        if not self.refine_factor or self.refine_from == "store":
            return coarse
        refined = faiss.IndexRefineFlat(coarse)  # FAISS's wrappers keep the parts alive
        refined.k_factor = float(self.refine_factor)
        return refined

    def train(self, sample) -> None:
        """Fit the cells of ``ivf`` / ``ivfpq`` on a ``(M, dim)`` sample of image tokens
        (nothing to fit for ``flat`` and ``hnsw``)."""
        if self.kind not in ("ivf", "ivfpq"):
            return
        sample = np.ascontiguousarray(np.asarray(sample, dtype=np.float32))
        if sample.ndim != 2 or sample.shape[1] != self.dim:
            raise ValueError(f"training sample must be (M, {self.dim}), got {sample.shape}")
        cells = self.cells or default_centroids(len(sample))
        needed = max(cells, 256 if self.kind == "ivfpq" else 0)  # 8-bit codebooks: 256
        if len(sample) < needed:
            raise ValueError(f"{self.kind} with {cells} cells needs at least {needed} tokens")
        self.cells = cells
        self._faiss = self._untrained_index(cells)
        self._faiss.train(sample)

    def add(self, image_tokens) -> None:
        """Append ``(n, V, dim)`` images (ids continue from the images already added)."""
        if self._faiss is None or not self._faiss.is_trained:
            raise RuntimeError(f"TokenIndex.add before train: a {self.kind} index fits cells first")
        tokens = _tokens(image_tokens)
        if tokens.shape[1:] != (self.tokens_per_image, self.dim):
            raise ValueError(
                f"images must be (n, {self.tokens_per_image}, {self.dim}), got {tokens.shape}"
            )
        first = self._offsets[-1]
        if self._memmap is not None and first + len(tokens) > len(self._memmap):
            raise ValueError(
                f"the memmap store holds {len(self._memmap)} images (capacity); adding "
                f"{len(tokens)} to {first} exceeds it"
            )
        self._faiss.add(np.ascontiguousarray(tokens.reshape(-1, self.dim)))
        if self._memmap is not None:
            row = self.tokens_per_image * self.dim * 2
            with open(self._store_path, "r+b") as store:
                store.seek(self._memmap.offset + first * row)
                store.write(np.ascontiguousarray(tokens, dtype=np.float16).tobytes())
        else:
            self._chunks.append(tokens.astype(STORE_DTYPES[self.store_dtype]))
        self._offsets.append(first + len(tokens))

    def tokens_of(self, ids: np.ndarray) -> torch.Tensor:
        """Stored tokens of images ``ids`` as a float32 ``(len(ids), V, dim)`` tensor."""
        return _stored_tokens(self, ids)

    def candidates(self, bags: np.ndarray, tokens_per_bag: int, nprobe: int, ef_search: int):
        """Ids of the images owning a token among some bag's ``tokens_per_bag`` nearest."""
        import faiss

        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(ef_search, tokens_per_bag))
        elif self.kind == "ivf" or (self.kind == "ivfpq" and not self._refines_in_faiss):
            params = faiss.SearchParametersIVF(nprobe=nprobe)
        elif self.kind == "ivfpq":
            params = faiss.IndexRefineSearchParameters(
                k_factor=float(self.refine_factor),
                base_index_params=faiss.SearchParametersIVF(nprobe=nprobe),
            )
        else:
            params = None
        bags = np.ascontiguousarray(bags)
        if self.kind == "ivfpq" and self.refine_factor and self.refine_from == "store":
            _, ids = self._faiss.search(bags, tokens_per_bag * self.refine_factor, params=params)
            ids = self._refine_from_store(bags, ids, tokens_per_bag)
        else:
            _, ids = self._faiss.search(bags, tokens_per_bag, params=params)
        ids = ids[ids >= 0]  # FAISS pads with -1 when it finds fewer
        return np.unique(ids // self.tokens_per_image)

    @property
    def _refines_in_faiss(self) -> bool:
        return bool(self.refine_factor) and self.refine_from == "faiss"

    def _refine_from_store(self, bags: np.ndarray, ids: np.ndarray, keep: int) -> np.ndarray:
        """Each bag's ``keep`` best of its fetched token ids (``(B, n)``, -1 padded) by the
        exact dot product with the stored tokens."""
        found = ids >= 0
        flat = ids[found]
        order = np.argsort(flat)  # ascending reads
        images, positions = np.divmod(flat[order], self.tokens_per_image)
        vectors = np.empty((len(flat), self.dim), dtype=np.float32)
        if self._memmap is not None:
            vectors[order] = self._memmap[images, positions]
        else:
            chunk = np.searchsorted(self._offsets, images, side="right") - 1
            for c in np.unique(chunk):
                rows = np.nonzero(chunk == c)[0]
                local = images[rows] - self._offsets[c]
                vectors[order[rows]] = self._chunks[c][local, positions[rows]]
        scores = np.full(ids.shape, -np.inf, dtype=np.float32)
        rows = np.nonzero(found)[0]
        scores[found] = np.einsum("nd,nd->n", vectors, bags[rows])
        keep = min(keep, ids.shape[1])
        best = np.argpartition(-scores, keep - 1, axis=1)[:, :keep]
        chosen = np.take_along_axis(ids, best, axis=1)
        return np.where(np.take_along_axis(scores, best, axis=1) > -np.inf, chosen, -1)

    def search(
        self, bags, k: int, tokens_per_bag: int = 256, nprobe: int = 16, ef_search: int = 256
    ):
        """Top ``k`` images of one query (``(B, dim)`` normalised bags, padding removed):
        ``(exact MaxSim scores, image ids, number of candidates)``."""
        bags = torch.as_tensor(bags, dtype=torch.float32)
        if bags.ndim != 2 or bags.shape[1] != self.dim or not len(bags):
            shape = tuple(bags.shape)
            raise ValueError(f"a query's bags must be (B >= 1, {self.dim}), got {shape}")
        if not self.num_images:
            raise RuntimeError("TokenIndex.search before add: the index is empty")
        shortlist = self.candidates(bags.numpy(), tokens_per_bag, nprobe, ef_search)
        mask = torch.ones(1, len(bags), dtype=torch.bool)
        scores, _ = bagwise_similarity(
            bags[None], mask, self.tokens_of(shortlist), directions="t2i"
        )
        top = scores[0].topk(min(k, len(shortlist)))
        return top.values, torch.from_numpy(shortlist)[top.indices], len(shortlist)


def exact_search(image_tokens, bags, k: int):
    """Brute-force MaxSim top ``k`` of one query over every image (the reference)."""
    image_tokens = torch.as_tensor(image_tokens, dtype=torch.float32)
    mask = torch.ones(1, len(bags), dtype=torch.bool)
    scores, _ = bagwise_similarity(bags[None], mask, image_tokens, directions="t2i")
    top = scores[0].topk(min(k, len(image_tokens)))
    return top.values, top.indices


def exact_search_chunks(chunks, queries, k: int = 10):
    """Brute-force MaxSim top ``k`` of each query over a gallery given as ``(first id,
    (n, V, d) tokens)`` chunks: ``(top ids per query, seconds per query)``; the seconds
    count the scoring and merging, not the production of the chunks."""
    best = [(torch.empty(0), torch.empty(0, dtype=torch.long)) for _ in queries]
    seconds = [0.0] * len(queries)
    for start, chunk in chunks:
        for q, bags in enumerate(queries):
            begin = time.perf_counter()
            scores, ids = exact_search(chunk, bags, k)
            merged = torch.cat([best[q][0], scores])
            top = merged.topk(min(k, len(merged)))
            best[q] = (top.values, torch.cat([best[q][1], ids + start])[top.indices])
            seconds[q] += time.perf_counter() - begin
    return [ids for _, ids in best], seconds


# ---------------------------------------------------------------- synthetic galleries
class ClusteredGallery:
    """``count`` images of ``tokens`` normalised ``dim``-d tokens around ``concepts``
    centres (``noise`` the weight of the noise: larger is less clustered), generated chunk
    by chunk (the same chunk every time), for benchmarks and tests."""

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


def make_queries(first_chunk, count, seed, shift=0.0, bags=8):
    """``(source image, (bags, dim) bags)``: ``bags`` tokens of an image of ``first_chunk``
    plus noise, moved by ``shift`` times one fixed unit direction (a text-image shift),
    normalised."""
    gen = torch.Generator().manual_seed(seed + 7)
    direction = F.normalize(torch.randn(first_chunk.shape[2], generator=gen), dim=0)
    queries = []
    for _ in range(count):
        image = int(torch.randint(0, len(first_chunk), (1,), generator=gen))
        order = torch.randperm(first_chunk.shape[1], generator=gen)[:bags]
        picked = first_chunk[image, order]
        noise = torch.randn(picked.shape, generator=gen) / picked.shape[1] ** 0.5
        queries.append((image, F.normalize(picked + 0.3 * noise + shift * direction, dim=-1)))
    return queries
