"""Bag-wise (MaxSim) retrieval past brute force: a FAISS index over every image token
gives candidate images, and exact bag-wise MaxSim ranks only those (ColBERT's two-stage
search, applied to BagFormer's text-to-image direction).

Each of a query's bags searches the ``token_k`` nearest image tokens; the images owning
them are the candidates; their s_t2i (sum over bags of the max over the image's tokens)
is computed exactly from the stored token embeddings. With a ``flat`` (exact) token index
and enough ``token_k`` the result equals brute-force MaxSim; ``ivf`` / ``hnsw`` trade
recall for speed (:func:`retrieval_ext.index.build_index`).
"""

from __future__ import annotations

from retrieval_ext.index import build_index
from retrieval_ext.models.bagging import bagwise_similarity

import numpy as np
import torch


class MultiVectorIndex:
    """Image token embeddings ``(N, V, d)`` (normalised), searchable by bags.

    Args:
        image_tokens: ``(N, V, d)`` float tensor or array.
        kind: FAISS index kind over the N*V tokens (``flat``, ``ivf``, ``hnsw``).
        index_options: passed to :func:`retrieval_ext.index.build_index`.
    """

    def __init__(self, image_tokens, kind: str = "flat", **index_options):
        tokens = torch.as_tensor(np.asarray(image_tokens, dtype=np.float32))
        if tokens.ndim != 3:
            raise ValueError(f"image tokens must be (N, V, d), got shape {tuple(tokens.shape)}")
        self.tokens = tokens
        self.num_images, self.tokens_per_image, dim = tokens.shape
        self.index = build_index(tokens.reshape(-1, dim).numpy(), kind=kind, **index_options)

    def candidates(self, bags: torch.Tensor, token_k: int) -> np.ndarray:
        """Sorted ids of the images owning any of the ``token_k`` nearest tokens of any bag."""
        _, ids = self.index.search(np.ascontiguousarray(bags.numpy(), dtype=np.float32), token_k)
        ids = ids[ids >= 0]
        return np.unique(ids // self.tokens_per_image)

    def search(self, bags: torch.Tensor, k: int, token_k: int = 32):
        """Top ``k`` images of one query ``(B, d)`` (its unmasked bags) by exact MaxSim over
        the candidates; returns ``(scores, image ids, number of candidates)``."""
        candidates = self.candidates(bags, token_k)
        mask = torch.ones(1, len(bags), dtype=torch.bool)
        scores, _ = bagwise_similarity(
            bags[None], mask, self.tokens[torch.from_numpy(candidates)], directions="t2i"
        )
        top = scores[0].topk(min(k, len(candidates)))
        return top.values, torch.from_numpy(candidates)[top.indices], len(candidates)


def exact_search(image_tokens: torch.Tensor, bags: torch.Tensor, k: int):
    """Brute-force MaxSim top ``k`` of one query over every image (the reference)."""
    mask = torch.ones(1, len(bags), dtype=torch.bool)
    scores, _ = bagwise_similarity(bags[None], mask, image_tokens, directions="t2i")
    top = scores[0].topk(min(k, len(image_tokens)))
    return top.values, top.indices
