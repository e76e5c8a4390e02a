"""retrieval_ext/multivector.py: FAISS candidates over image tokens, then exact MaxSim."""

from retrieval_ext.multivector import MultiVectorIndex, exact_search

import pytest
import torch
import torch.nn.functional as F


@pytest.fixture(scope="module")
def gallery():
    gen = torch.Generator().manual_seed(0)
    return F.normalize(torch.randn(60, 5, 16, generator=gen), dim=-1), gen


def test_a_flat_index_with_every_token_as_candidate_equals_brute_force(gallery):
    tokens, gen = gallery
    index = MultiVectorIndex(tokens, kind="flat")
    for _ in range(5):
        bags = F.normalize(torch.randn(4, 16, generator=gen), dim=-1)
        scores, ids, count = index.search(bags, k=10, token_k=tokens.shape[0] * tokens.shape[1])
        exact_scores, exact_ids = exact_search(tokens, bags, 10)
        assert count == 60 and torch.equal(ids, exact_ids)
        assert torch.allclose(scores, exact_scores)


def test_candidates_are_the_owners_of_the_nearest_tokens(gallery):
    tokens, _ = gallery
    index = MultiVectorIndex(tokens, kind="flat")
    bags = tokens[7, :2].clone()  # two tokens of image 7: their nearest token is their own
    assert 7 in index.candidates(bags, token_k=1).tolist()
    _, ids, count = index.search(bags, k=1, token_k=1)
    assert ids.tolist() == [7] and count <= 2


def test_a_gallery_of_the_wrong_shape_is_named():
    with pytest.raises(ValueError, match=r"\(N, V, d\)"):
        MultiVectorIndex(torch.zeros(3, 4))
