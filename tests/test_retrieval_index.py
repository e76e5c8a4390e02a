"""FAISS search of exported embeddings, the export itself on real mp4s, the converters, and
the benchmark tool's protocol on a small gallery."""

import json

import retrieval_ext  # noqa: F401
from retrieval_ext.datasets.converters import convert_didemo, convert_msrvtt, convert_msvd
from retrieval_ext.index import (
    brute_force_search,
    build_index,
    export_embeddings,
    index_metrics,
    load_embeddings,
    search,
)
from retrieval_ext.tasks.text_video_retrieval import retrieval_metrics

import numpy as np
import pytest
import torch
from lavis.common.registry import registry
from retrieval_helpers import tiny_model_cfg, write_tiny_embedded


def _unit(rng, n, d):
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture
def embeddings():
    rng = np.random.default_rng(0)
    videos = _unit(rng, 80, 16)
    video2txt = {v: [3 * v, 3 * v + 1, 3 * v + 2] for v in range(80)}
    txt2video = {t: v for v, ts in video2txt.items() for t in ts}
    texts = videos[[txt2video[t] for t in range(240)]] + 0.9 * _unit(rng, 240, 16)
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)
    return videos, texts, txt2video, video2txt


def test_exact_index_gives_the_task_metrics(embeddings):
    videos, texts, txt2video, video2txt = embeddings
    for convention in ("clip4clip", "lavis"):
        expected = retrieval_metrics(texts @ videos.T, txt2video, video2txt, convention)
        got = index_metrics(videos, texts, txt2video, video2txt, "flat", convention)
        assert got == pytest.approx(expected), convention
        assert 0 < expected["t2v_r1"] < 100  # a non-trivial ranking
    # noisier captions: the conventions differ on video-to-text, and FAISS still agrees
    noisy = texts + 2.0 * _unit(np.random.default_rng(1), len(texts), texts.shape[1])
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    by_convention = {
        c: index_metrics(videos, noisy, txt2video, video2txt, "flat", c)
        for c in ("clip4clip", "lavis")
    }
    assert by_convention["clip4clip"]["v2t_meanr"] < by_convention["lavis"]["v2t_meanr"]
    for c, metrics in by_convention.items():
        assert metrics == pytest.approx(
            retrieval_metrics(noisy @ videos.T, txt2video, video2txt, c)
        )


def test_ivf_searching_every_cell_is_exact_and_brute_force_agrees(embeddings):
    videos, texts, *_ = embeddings
    _, exact = search(build_index(videos, "flat"), texts, 10)
    _, brute = brute_force_search(videos, texts, 10)
    _, ivf = search(build_index(videos, "ivf", nlist=2, nprobe=2), texts, 10)
    assert np.array_equal(exact, brute) and np.array_equal(exact, ivf)
    hnsw = build_index(videos, "hnsw", ef_search=256)
    assert np.mean(search(hnsw, texts, 1)[1][:, 0] == exact[:, 0]) > 0.95
    with pytest.raises(ValueError, match="unknown index kind 'lsh'"):
        build_index(videos, "lsh")


def test_approximate_index_recalls_at_k_as_exact_when_it_finds_the_same(embeddings):
    videos, texts, txt2video, video2txt = embeddings
    exact = index_metrics(videos, texts, txt2video, video2txt, "flat")
    ivf = index_metrics(videos, texts, txt2video, video2txt, "ivf", nlist=2, nprobe=2)
    for key in ("t2v_r1", "t2v_r5", "t2v_r10", "t2v_r50", "v2t_r1", "v2t_r10"):
        assert ivf[key] == pytest.approx(exact[key])


def test_export_writes_what_the_model_scores(tmp_path, monkeypatch):
    write_tiny_embedded(tmp_path / "data" / "video_text", train=1, val=1, test=3)
    monkeypatch.chdir(tmp_path)
    test_set = registry.get_builder_class("embedded_text_video")().build_datasets()["test"]
    loader = torch.utils.data.DataLoader(test_set, batch_size=4, collate_fn=test_set.collater)
    torch.manual_seed(0)
    model = registry.get_model_class("clip4clip_retrieval").from_config(tiny_model_cfg("seqTransf"))
    model.eval()
    folder = export_embeddings(model, loader, tmp_path / "emb", {"note": "test"})
    videos, texts, txt2video, video2txt, meta = load_embeddings(folder)
    assert videos.shape == (6, 64) and texts.shape == (12, 64)
    assert np.allclose(np.linalg.norm(videos, axis=1), 1, atol=1e-5)
    assert meta["video_ids"] == [e["video_id"] for e in test_set.entries]
    _, sim_t2v = model.compute_sim_matrix(loader)
    assert np.allclose(texts @ videos.T, sim_t2v, atol=1e-5)
    assert txt2video == test_set.txt2video and video2txt == test_set.video2txt
    (folder / "texts.npy").unlink()
    with pytest.raises(FileNotFoundError, match="texts.npy is missing"):
        load_embeddings(folder)


def test_msrvtt_converter_builds_9k_and_1k_a(tmp_path):
    info = {"sentences": [{"video_id": f"video{i % 3}", "caption": f"c{i}"} for i in range(6)]}
    (tmp_path / "MSRVTT_data.json").write_text(json.dumps(info))
    (tmp_path / "train.csv").write_text("video_id\nvideo0\nvideo1\n")
    (tmp_path / "test.csv").write_text("key,vid_key,video_id,sentence\nk,v,video2,a dog runs\n")
    counts = convert_msrvtt(
        tmp_path / "MSRVTT_data.json", tmp_path / "train.csv", tmp_path / "test.csv", tmp_path
    )
    assert counts == {"train_9k": 2, "test_1k-A": 1}
    train = json.loads((tmp_path / "train_9k.json").read_text())
    assert train[0] == {"video": "video0.mp4", "caption": ["c0", "c3"], "video_id": "video0"}
    test = json.loads((tmp_path / "test_1k-A.json").read_text())
    assert test[0]["caption"] == ["a dog runs"]
    (tmp_path / "train.csv").write_text("video_id\nvideo9\n")
    with pytest.raises(ValueError, match=r"no captions for 1 video\(s\).*video9"):
        convert_msrvtt(
            tmp_path / "MSRVTT_data.json", tmp_path / "train.csv", tmp_path / "test.csv", tmp_path
        )


def test_msrvtt_converter_builds_7k_and_the_full_split(tmp_path):
    """TeachCLIP's 7k protocol: id-only val/test lists take every caption of each video."""
    info = {"sentences": [{"video_id": f"video{i % 3}", "caption": f"c{i}"} for i in range(6)]}
    (tmp_path / "MSRVTT_data.json").write_text(json.dumps(info))
    (tmp_path / "train.7k.csv").write_text("video_id\nvideo0\n")
    (tmp_path / "val.csv").write_text("video_id\nvideo1\n")
    (tmp_path / "test.csv").write_text("video_id\nvideo2\n")
    counts = convert_msrvtt(
        tmp_path / "MSRVTT_data.json", tmp_path / "train.7k.csv", tmp_path / "test.csv",
        tmp_path / "out", train_name="7k", test_name="full", val_csv=tmp_path / "val.csv",
    )  # fmt: skip
    assert counts == {"train_7k": 1, "val_full": 1, "test_full": 1}
    test = json.loads((tmp_path / "out" / "test_full.json").read_text())
    assert test == [{"video": "video2.mp4", "caption": ["c2", "c5"], "video_id": "video2"}]
    (tmp_path / "test.csv").write_text("id\nvideo2\n")
    with pytest.raises(KeyError, match=r"test.csv: no column 'video_id'"):
        convert_msrvtt(
            tmp_path / "MSRVTT_data.json",
            tmp_path / "train.7k.csv",
            tmp_path / "test.csv",
            tmp_path,
        )


def test_msvd_and_didemo_converters(tmp_path):
    (tmp_path / "AllVideoDescriptions.txt").write_text(
        "# header\nvidA_1_5 a man cooks\nvidA_1_5 someone is cooking\nvidB_2_9 a cat sleeps\n"
    )
    for split, ids in (("train", "vidA_1_5"), ("val", "vidB_2_9"), ("test", "vidB_2_9")):
        (tmp_path / f"{split}_list.txt").write_text(ids + "\n")
    assert convert_msvd(tmp_path / "AllVideoDescriptions.txt", tmp_path, tmp_path / "msvd") == {
        "train": 1,
        "val": 1,
        "test": 1,
    }
    train = json.loads((tmp_path / "msvd" / "train.json").read_text())
    assert train == [
        {
            "video": "vidA_1_5.avi",
            "caption": ["a man cooks", "someone is cooking"],
            "video_id": "vidA_1_5",
        }
    ]
    for split in ("train", "val", "test"):
        items = [
            {"video": "v1.mov", "description": "a girl enters."},
            {"video": "v1.mov", "description": "she sits."},
        ]
        (tmp_path / f"{split}_data.json").write_text(json.dumps(items))
    convert_didemo(tmp_path, tmp_path / "didemo")
    test = json.loads((tmp_path / "didemo" / "test.json").read_text())
    assert test == [{"video": "v1.mp4", "caption": ["a girl enters. she sits."], "video_id": "v1"}]
    (tmp_path / "val_data.json").write_text(json.dumps([{"video": "v1.mov"}]))
    with pytest.raises(KeyError, match="val_data.json: entry 0 needs 'video' and 'description'"):
        convert_didemo(tmp_path, tmp_path / "didemo")


def test_benchmark_protocol_on_a_small_gallery(tmp_path):
    from conftest import load_tool

    bench = load_tool("retrieval_index_benchmark")
    rows = bench.benchmark(
        [2000],
        dim=32,
        threads=1,
        num_queries=32,
        nprobe=4,
        seed=0,
        latency_repeats=3,
        progress=lambda _: None,
    )
    assert [r["method"].split(",")[0] for r in rows] == [
        "brute force (torch matmul)",
        "FAISS exact (IndexFlatIP)",
        "FAISS IVF (IndexIVFFlat)",
    ]
    assert rows[0]["latency vs brute force"] == 1.0 and rows[1]["recall@10 vs exact"] == 1.0
    assert 0 < rows[2]["recall@10 vs exact"] <= 1
    assert all(r["queries/s (batch)"] > 0 and r["latency ms (batch 1)"] > 0 for r in rows)
