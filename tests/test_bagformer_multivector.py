"""retrieval_ext/multivector.py: centroid lists for candidates, centroid interaction for a
shortlist, exact MaxSim on the shortlist."""

from retrieval_ext.multivector import MultiVectorIndex, default_centroids, exact_search

import numpy as np
import pytest
import torch
import torch.nn.functional as F


@pytest.fixture(scope="module")
def gallery():
    gen = torch.Generator().manual_seed(0)
    return F.normalize(torch.randn(60, 5, 16, generator=gen), dim=-1), gen


def _queries(gen, count=5, bags=4, dim=16):
    return [F.normalize(torch.randn(bags, dim, generator=gen), dim=-1) for _ in range(count)]


def test_probing_every_centroid_and_reranking_every_image_equals_brute_force(gallery):
    tokens, gen = gallery
    index = MultiVectorIndex.build(tokens, centroids=16)
    for bags in _queries(gen):
        scores, ids, count = index.search(bags, k=10, nprobe=16, rerank=60)
        exact_scores, exact_ids = exact_search(tokens, bags, 10)
        assert count == 60 and torch.equal(ids, exact_ids)
        assert torch.allclose(scores, exact_scores)


def test_approximate_scores_are_maxsim_over_the_tokens_centroids(gallery):
    tokens, gen = gallery
    index = MultiVectorIndex.build(tokens, centroids=16)
    centroids = torch.from_numpy(index.centroids)
    codes = torch.from_numpy(np.concatenate(index._codes)).long()
    (bags,) = _queries(gen, count=1)
    ids, approx = index.approximate_scores(bags.numpy(), nprobe=16)
    # every token replaced by its centroid, then MaxSim
    expected, _ = exact_search(centroids[codes], bags, 60)
    reference = torch.zeros(60)
    reference[exact_search(centroids[codes], bags, 60)[1]] = expected
    assert np.array_equal(ids, np.arange(60))
    assert torch.allclose(torch.from_numpy(approx), reference, atol=1e-5)


def test_pruned_probing_scores_only_images_on_the_probed_lists(gallery):
    tokens, gen = gallery
    index = MultiVectorIndex.build(tokens, centroids=16)
    (bags,) = _queries(gen, count=1, bags=1)
    ids, approx = index.approximate_scores(bags.numpy(), nprobe=1)
    best = int(np.argmax(bags.numpy() @ index.centroids.T))
    owners = {i for i, codes in enumerate(np.concatenate(index._codes)) if best in codes}
    assert set(ids.tolist()) == owners
    assert np.allclose(approx, float(bags[0] @ torch.from_numpy(index.centroids[best])))


def test_images_added_in_chunks_search_as_one_gallery(gallery):
    tokens, gen = gallery
    whole = MultiVectorIndex.build(tokens, centroids=16)
    chunked = MultiVectorIndex(16, 5, centroids=16)
    chunked.train(tokens.reshape(-1, 16))
    for start in range(0, 60, 25):
        chunked.add(tokens[start : start + 25])
    assert chunked.num_images == 60
    assert torch.equal(chunked.tokens_of(np.array([59, 0, 30])), tokens[[59, 0, 30]])
    for bags in _queries(gen):
        a, b = whole.search(bags, 5, nprobe=3, rerank=8), chunked.search(bags, 5, 3, 8)
        assert torch.equal(a[1], b[1]) and a[2] == b[2]


def test_float16_storage_keeps_the_exact_ranking_within_its_rounding(gallery):
    tokens, gen = gallery
    index = MultiVectorIndex.build(tokens, centroids=16, store_dtype="float16")
    assert index._chunks[0].dtype == np.float16
    for bags in _queries(gen):
        scores, ids, _ = index.search(bags, k=5, nprobe=16, rerank=60)
        exact_scores, _ = exact_search(tokens, bags, 5)
        assert torch.allclose(scores, exact_scores, atol=4e-3)


def test_a_query_made_of_an_images_tokens_finds_that_image_from_a_short_list(gallery):
    tokens, _ = gallery
    index = MultiVectorIndex.build(tokens, centroids=16)
    _, ids, count = index.search(tokens[7].clone(), k=1, nprobe=1, rerank=4)
    assert ids.tolist() == [7] and count < 60


def test_default_centroids_grow_with_the_square_root_of_the_tokens():
    assert default_centroids(10) == 16
    assert default_centroids(370_000) == 2048
    assert default_centroids(37_000_000) == 4096  # capped


def test_bad_shapes_and_order_are_named(gallery):
    tokens, _ = gallery
    with pytest.raises(ValueError, match=r"\(N, V, d\)"):
        MultiVectorIndex.build(torch.zeros(3, 4))
    index = MultiVectorIndex(16, 5, centroids=4)
    with pytest.raises(RuntimeError, match="before train"):
        index.add(tokens)
    with pytest.raises(RuntimeError, match="index is empty"):
        index.search(tokens[0], k=1)
    index.train(tokens.reshape(-1, 16))
    with pytest.raises(ValueError, match=r"\(n, 5, 16\)"):
        index.add(tokens[:, :4])
    index.add(tokens)
    with pytest.raises(ValueError, match=r"\(B >= 1, 16\), got \(3, 8\)"):
        index.search(torch.zeros(3, 8), k=1)
    with pytest.raises(ValueError, match="store_dtype"):
        MultiVectorIndex(16, 5, store_dtype="int8")
    with pytest.raises(ValueError, match="need at least"):
        MultiVectorIndex(16, 5, centroids=64).train(tokens[:2].reshape(-1, 16))


def test_index_benchmark_tool_reports_exact_recall_when_nothing_is_pruned(tmp_path):
    import json

    from conftest import load_tool

    bench = load_tool("bagformer_index_benchmark")
    out = tmp_path / "bench"
    args = ["--gallery", "600", "--chunk", "250", "--tokens", "5", "--dim", "16"]
    args += ["--concepts", "32", "--centroids", "16", "--queries", "4", "--out", str(out)]
    assert bench.main(args + ["--nprobe", "16", "1", "--rerank", "600", "8"]) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [(r["nprobe"], r["rerank"]) for r in rows] == [(16, 600), (16, 8), (1, 600), (1, 8)]
    exhaustive = rows[0]
    assert exhaustive["recall@10_vs_exact"] == 1.0 and exhaustive["mean_candidates"] == 600
    assert exhaustive["source@1"] == exhaustive["exact source@1"]
    assert all(0 <= r["recall@10_vs_exact"] <= 1 and r["latency_ms"] > 0 for r in rows)
    assert rows[3]["mean_candidates"] < 600
    # the chunked gallery is the same every time it is produced
    gallery = bench.ClusteredGallery(600, 5, 16, 32, 250, 0)
    first, again = list(gallery.chunks()), list(gallery.chunks())
    assert [s for s, _ in first] == [0, 250, 500] and torch.equal(first[2][1], again[2][1])


# ---------------------------------------------------------------- TokenIndex (FAISS)
def _token_index(tokens, kind, **options):
    from retrieval_ext.multivector import TokenIndex

    return TokenIndex.build(tokens, kind, store_dtype="float32", **options)


def _brute_force_candidates(tokens, bags, tokens_per_bag):
    """Images owning one of some bag's ``tokens_per_bag`` best tokens, by a full sort."""
    flat = tokens.reshape(-1, tokens.shape[-1])
    best = (bags @ flat.t()).topk(tokens_per_bag, dim=1).indices
    return set((best // tokens.shape[1]).reshape(-1).tolist())


def test_flat_token_index_candidates_are_the_owners_of_each_bags_best_tokens(gallery):
    tokens, gen = gallery
    index = _token_index(tokens, "flat")
    for bags in _queries(gen):
        found = set(index.candidates(bags.numpy(), 7, nprobe=1, ef_search=1).tolist())
        assert found == _brute_force_candidates(tokens, bags, 7)


def test_every_token_fetched_is_exact_bag_wise_search(gallery):
    tokens, gen = gallery
    everything = tokens.shape[0] * tokens.shape[1]
    for kind, options in (("flat", {}), ("ivf", {"cells": 8})):
        index = _token_index(tokens, kind, **options)
        for bags in _queries(gen, count=3):
            scores, ids, count = index.search(bags, 10, tokens_per_bag=everything, nprobe=8)
            exact_scores, exact_ids = exact_search(tokens, bags, 10)
            assert count == 60 and torch.equal(ids, exact_ids)
            assert torch.allclose(scores, exact_scores)


@pytest.mark.parametrize(
    "kind, options", [("hnsw", {}), ("ivf", {"cells": 16}), ("ivfpq", {"cells": 16})]
)
def test_approximate_token_indexes_recall_the_exact_top_10(kind, options):
    gen = torch.Generator().manual_seed(2)
    centres = F.normalize(torch.randn(32, 16, generator=gen), dim=-1)
    picks = torch.randint(0, 32, (400, 6), generator=gen)
    tokens = F.normalize(centres[picks] + 0.3 * torch.randn(400, 6, 16, generator=gen), dim=-1)
    index = _token_index(tokens, kind, pq_bytes=4, **options)
    recalls = []
    for image in range(0, 400, 40):  # queries: noisy tokens of an image
        bags = F.normalize(tokens[image, :4] + 0.2 * torch.randn(4, 16, generator=gen), dim=-1)
        _, ids, count = index.search(bags, 10, tokens_per_bag=64, nprobe=8)
        _, exact_ids = exact_search(tokens, bags, 10)
        recalls.append(len(set(ids.tolist()) & set(exact_ids.tolist())) / 10)
        assert count < 400  # a shortlist, not the gallery
    assert sum(recalls) / len(recalls) >= 0.9


def test_token_index_bad_input_is_named(gallery):
    from retrieval_ext.multivector import TokenIndex

    tokens, _ = gallery
    with pytest.raises(ValueError, match="kind 'lsh'"):
        TokenIndex(16, 5, kind="lsh")
    with pytest.raises(ValueError, match="pq_bytes=5 must divide the token width 16"):
        TokenIndex(16, 5, kind="ivfpq", pq_bytes=5)
    with pytest.raises(RuntimeError, match="add before train"):
        TokenIndex(16, 5, kind="ivf").add(tokens)
    with pytest.raises(ValueError, match="needs at least 256 tokens"):
        TokenIndex(16, 5, kind="ivfpq", cells=4, pq_bytes=4).train(tokens[:10].reshape(-1, 16))
    with pytest.raises(RuntimeError, match="the index is empty"):
        TokenIndex(16, 5).search(torch.ones(2, 16), 3)
    with pytest.raises(ValueError, match=r"images must be \(n, 5, 16\)"):
        TokenIndex(16, 5).add(tokens[:, :4])


def test_index_benchmark_tool_runs_token_indexes_on_the_hard_gallery(tmp_path):
    import json

    from conftest import load_tool

    bench = load_tool("bagformer_index_benchmark")
    out = tmp_path / "bench"
    args = ["--gallery", "300", "--chunk", "300", "--tokens", "5", "--dim", "16"]
    args += ["--concepts", "32", "--centroids", "16", "--queries", "4", "--out", str(out)]
    args += ["--kind", "hard", "--index", "flat", "hnsw", "ivf", "--tokens-per-bag", "1500"]
    assert bench.main(args + ["--nprobe", "16", "--ef-search", "64"]) == 0
    rows = json.loads((out / "results.json").read_text())["rows"]
    assert [(r["gallery"], r["index"]) for r in rows] == [
        ("hard", "flat"),
        ("hard", "hnsw"),
        ("hard", "ivf"),
    ]
    flat, _, ivf = rows
    # every token fetched (flat, or IVF probing all 16 cells): exact search
    assert flat["recall@10_vs_exact"] == 1.0 and flat["mean_candidates"] == 300
    assert ivf["recall@10_vs_exact"] == 1.0 and ivf["centroids"] == 16
    assert flat["centroids"] is None and rows[1]["ef_search"] == 64
    # the hard gallery's queries are shifted: weakly clustered tokens, moved bags
    easy = bench.make_queries(torch.zeros(2, 5, 16), 1, 0)[0][1]
    hard = bench.make_queries(torch.zeros(2, 5, 16), 1, 0, shift=0.5)[0][1]
    assert not torch.allclose(easy, hard)
    noisy = bench.ClusteredGallery(50, 5, 16, 4, 50, 0, noise=2.0)
    tight = bench.ClusteredGallery(50, 5, 16, 4, 50, 0)
    centre_fit = [
        (chunk @ g.centres.t()).amax(-1).mean() for g in (tight, noisy) for _, chunk in g.chunks()
    ]
    assert centre_fit[0] > centre_fit[1]  # weaker clusters: tokens further from a centre


# ---------------------------------------------------------------- large-gallery settings
def test_codes_only_ivfpq_and_a_memmap_store_search_like_the_in_memory_index(tmp_path):
    from retrieval_ext.multivector import TokenIndex

    gen = torch.Generator().manual_seed(3)
    centres = F.normalize(torch.randn(32, 16, generator=gen), dim=-1)
    picks = torch.randint(0, 32, (400, 6), generator=gen)
    tokens = F.normalize(centres[picks] + 0.3 * torch.randn(400, 6, 16, generator=gen), dim=-1)
    options = {"cells": 16, "pq_bytes": 4, "refine_factor": 0, "store_dtype": "float16"}
    in_memory = TokenIndex.build(tokens, "ivfpq", **options)
    on_disk = TokenIndex(16, 6, "ivfpq", store_path=tmp_path / "t.npy", capacity=400, **options)
    on_disk.train(tokens.reshape(-1, 16))
    on_disk.add(tokens[:150])
    on_disk.add(tokens[150:])
    assert not hasattr(in_memory._faiss, "k_factor")  # no IndexRefineFlat: codes only
    for image in range(0, 400, 50):
        bags = F.normalize(tokens[image, :4] + 0.2 * torch.randn(4, 16, generator=gen), dim=-1)
        scores, ids, _ = in_memory.search(bags, 10, tokens_per_bag=64, nprobe=16)
        disk_scores, disk_ids, _ = on_disk.search(bags, 10, tokens_per_bag=64, nprobe=16)
        assert torch.equal(ids, disk_ids) and torch.equal(scores, disk_scores)
        _, exact_ids = exact_search(tokens, bags, 10)
        assert len(set(ids.tolist()) & set(exact_ids.tolist())) >= 8
    with pytest.raises(ValueError, match="holds 400 images .* adding 1 to 400 exceeds it"):
        on_disk.add(tokens[:1])
    with pytest.raises(ValueError, match="needs store_dtype='float16' and a capacity"):
        TokenIndex(16, 6, "flat", store_dtype="float32", store_path=tmp_path / "u.npy")


def test_memory_estimate_counts_what_each_setting_holds():
    from retrieval_ext.multivector import TokenIndex

    tokens = 1000 * 257
    flat = TokenIndex.memory_bytes("flat", 1000, 257, 256)
    assert flat == tokens * 256 * 4 + tokens * 256 * 2  # float32 index + float16 store
    codes_only = TokenIndex.memory_bytes(
        "ivfpq", 1000, 257, 256, pq_bytes=32, refine_factor=0, in_memory_store=False
    )
    assert codes_only == tokens * (32 + 8)
    refined = TokenIndex.memory_bytes("ivfpq", 1000, 257, 256, pq_bytes=32, refine_factor=4)
    assert refined == codes_only + tokens * 256 * 4 + tokens * 256 * 2
    hnsw = TokenIndex.memory_bytes("hnsw", 1000, 257, 256, in_memory_store=False)
    assert hnsw == tokens * 256 * 4 + tokens * 32 * 2 * 4


def test_exact_stage_bytes_counts_the_float32_copy_a_search_makes(gallery):
    """A search copies its candidates' stored (float16) tokens to float32; that copy and the
    bags' dot products with it are what :func:`exact_stage_bytes` adds to an index's
    memory."""
    import tracemalloc

    from retrieval_ext.multivector import TokenIndex, exact_stage_bytes

    tokens, _ = gallery
    images, per_image, dim = tokens.shape
    index = TokenIndex.build(tokens, "flat", store_dtype="float16")
    tracemalloc.start()
    _, _, candidates = index.search(tokens[0, :3], 10, tokens_per_bag=images * per_image)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    copy = candidates * per_image * dim * 4
    assert candidates == images and peak >= copy  # every token fetched: every image scored
    assert exact_stage_bytes(candidates, per_image, dim, 3) == copy + 3 * candidates * per_image * 4
    # at the model's full size: 3,000 candidates' tokens take 0.79 GB in float32
    assert exact_stage_bytes(3000, 257, 256, 0) == 789_504_000


def test_exact_search_over_chunks_equals_exact_search_over_the_gallery(gallery):
    from retrieval_ext.multivector import exact_search_chunks

    tokens, gen = gallery
    queries = _queries(gen, count=3)
    chunks = [(start, tokens[start : start + 25]) for start in range(0, 60, 25)]
    found, seconds = exact_search_chunks(chunks, queries, 10)
    for bags, ids in zip(queries, found, strict=True):
        assert torch.equal(ids, exact_search(tokens, bags, 10)[1])
    assert len(seconds) == 3


def test_index_benchmark_recall_against_brute_force_and_its_memory_bound(
    gallery, tmp_path, monkeypatch
):
    import shutil
    from argparse import Namespace

    from retrieval_ext.multivector import TokenIndex, exact_stage_bytes

    from conftest import load_tool

    bench = load_tool("bagformer_index_benchmark")
    tokens, gen = gallery
    assert bench.recall_at_k(np.array([1, 2, 3, 9]), {1, 2, 4, 5}) == 0.5
    queries = [(image, tokens[image, :3]) for image in (0, 7, 30)]
    exact = [set(exact_search(tokens, bags, 10)[1].tolist()) for _, bags in queries]
    index = TokenIndex.build(tokens, "flat", store_dtype="float32")
    everything = {"tokens_per_bag": 300}  # every token fetched: the exact top 10
    measured = bench.evaluate(index, queries, exact, everything)
    assert measured["recall"] == 1.0 and measured["source"] == 1.0
    few = bench.evaluate(index, queries, exact, {"tokens_per_bag": 1})
    assert few["candidates"] <= 3 and few["recall"] < 1.0  # at most 3 images: not 10

    args = Namespace(
        index=["hnsw", "ivfpq"], gallery=[1000, 1_000_000], tokens=257, dim=256, chunk=2000,
        hnsw_neighbours=32, pq_bytes=32, refine_factor=4, refine_from="store",
        store_dtype="float16",
        store="memmap", memory_gb=8.0, store_dir=tmp_path, out=tmp_path,
        tokens_per_bag=[64, 256], rerank=[256, 1024],
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"--index hnsw at --gallery 1000000: 1,000,000 images"):
        bench.check_memory(args)
    args.index = ["ivfpq"]
    with pytest.raises(ValueError, match="x 257 tokens x 256 dims .* need about 11.6 GiB"):
        bench.check_memory(args)  # codes and ids (257M x 40 bytes), one chunk, one search
    exact_stage = exact_stage_bytes(8 * 256, 257, 256, 8)  # 8 bags x 256 tokens' images
    fewer = Namespace(**{**vars(args), "tokens_per_bag": [64]})
    assert bench.memory_bytes("ivfpq", 10**6, args) - bench.memory_bytes(
        "ivfpq", 10**6, fewer
    ) == exact_stage - exact_stage_bytes(8 * 64, 257, 256, 8)
    assert bench.memory_bytes("plaid", 100, args) - bench.memory_bytes(
        "plaid", 100, Namespace(**{**vars(args), "rerank": [10]})
    ) == exact_stage_bytes(100, 257, 256, 8) - exact_stage_bytes(10, 257, 256, 8)
    args.gallery = [100_000]
    bench.check_memory(args)  # 100k: codes in memory, the tokens in the memmap file
    args.store = "memory"
    with pytest.raises(ValueError, match="above --memory-gb 8.0"):
        bench.check_memory(args)
    args.store, args.gallery, args.memory_gb = "memmap", [1_000_000], 16.0
    disk = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _: disk._replace(free=100 * 2**30))
    with pytest.raises(ValueError, match="need 122.5 GiB of float16 on disk, 100.0 GiB free"):
        bench.check_memory(args)


def test_refining_from_the_store_picks_the_tokens_index_refine_flat_picks(tmp_path):
    from retrieval_ext.multivector import TokenIndex

    gen = torch.Generator().manual_seed(4)
    tokens = F.normalize(torch.randn(300, 6, 16, generator=gen), dim=-1)
    options = {"cells": 8, "pq_bytes": 4, "refine_factor": 4, "store_dtype": "float32"}
    in_faiss = TokenIndex.build(tokens, "ivfpq", **options)
    from_store = TokenIndex.build(tokens, "ivfpq", refine_from="store", **options)
    on_disk = TokenIndex(
        16, 6, "ivfpq", refine_from="store", store_path=tmp_path / "t.npy", capacity=300,
        **(options | {"store_dtype": "float16"}),
    )  # fmt: skip
    on_disk.train(tokens.reshape(-1, 16))
    on_disk.add(tokens)
    assert not hasattr(from_store._faiss, "k_factor")  # no float32 copy inside FAISS
    for bags in _queries(gen, count=4):
        wanted = in_faiss.candidates(bags.numpy(), 20, nprobe=8, ef_search=0)
        assert np.array_equal(
            from_store.candidates(bags.numpy(), 20, nprobe=8, ef_search=0), wanted
        )
        disk = on_disk.candidates(bags.numpy(), 20, nprobe=8, ef_search=0)
        assert len(set(disk.tolist()) & set(wanted.tolist())) >= 0.9 * len(wanted)  # float16
    with pytest.raises(ValueError, match="refine_from 'disk'"):
        TokenIndex(16, 6, "ivfpq", refine_from="disk")
