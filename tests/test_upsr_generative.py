"""tools/analysis_tools/upsr_generative_benchmark.py: distractor catalogues, rank metrics, and a
tiny run."""

import json
import math
import re

from recbole_ext.data.atomic import read_atomic
from recbole_ext.ranks import rank_from_json, rank_metrics, rank_to_json, target_ranks

import pytest
from conftest import load_tool


def _write_source(folder):
    folder.mkdir(parents=True)
    (folder / f"{folder.name}.item").write_text(
        "item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tToy Story\t1995\tAnimation Comedy\n"
        "7\tHeat\t1995\tAction Crime\n"
    )
    (folder / f"{folder.name}.inter").write_text(
        "user_id:token\titem_id:token\ttimestamp:float\n1\t1\t10\n1\t7\t11\n"
    )


def test_distractors_follow_the_largest_id_and_nobody_interacts_with_them(tmp_path):
    bench = load_tool("upsr_generative_benchmark")
    _write_source(tmp_path / "src")
    info = bench.write_catalogue(tmp_path / "src", tmp_path, 6, seed=3)
    assert info == {"dataset": "src-6items", "items": 6, "distractors": 4}
    header, items = read_atomic(tmp_path / "src-6items" / "src-6items.item")
    assert [row[0] for row in items] == ["1", "7", "8", "9", "10", "11"]
    assert items[:2] == [
        ["1", "Toy Story", "1995", "Animation Comedy"],
        ["7", "Heat", "1995", "Action Crime"],
    ]
    assert all(row[1] and row[2].isdigit() and row[3] for row in items[2:])
    _, inters = read_atomic(tmp_path / "src-6items" / "src-6items.inter")
    assert inters == [["1", "1", "10"], ["1", "7", "11"]]
    again = bench.write_catalogue(tmp_path / "src", tmp_path / "again", 6, seed=3)
    assert again == info  # seeded: the same distractors
    assert read_atomic(tmp_path / "again" / "src-6items" / "src-6items.item")[1] == items
    with pytest.raises(ValueError, match="smaller than the 2 items"):
        bench.write_catalogue(tmp_path / "src", tmp_path, 1, seed=3)
    with pytest.raises(ValueError, match="--distractor-words: 'other'"):
        bench.write_catalogue(tmp_path / "src", tmp_path, 6, seed=3, words="other")


def test_source_word_distractors_are_written_in_the_source_titles_words(tmp_path):
    bench = load_tool("upsr_generative_benchmark")
    _write_source(tmp_path / "src")
    info = bench.write_catalogue(tmp_path / "src", tmp_path, 40, seed=3, words="source")
    assert info["dataset"] == "src-40items-source-words"
    _, items = read_atomic(tmp_path / info["dataset"] / f"{info['dataset']}.item")
    words = {w for row in items[2:] for w in row[1].split()}
    assert words == {"Toy", "Story", "Heat"}  # 38 titles of 3 draws cover all three


def test_rank_metrics_count_an_ungenerated_item_as_a_miss():
    import torch

    scores = torch.tensor([[-1.0, -2.0, -0.5], [-1.0, -float("inf"), -0.5]])
    ranks = target_ranks(scores, torch.tensor([0, 1]))
    assert ranks == [2.0, math.inf]
    assert [rank_to_json(r) for r in ranks] == [2, None]  # strict JSON: null, not Infinity
    assert rank_from_json(None) == math.inf
    out = rank_metrics([1, 3, math.inf, 15], [10, 20])
    assert out["recall@10"] == 0.5 and out["recall@20"] == 0.75
    assert out["ndcg@10"] == pytest.approx((1 + 0.5) / 4)
    assert out["ndcg@20"] == pytest.approx((1 + 0.5 + 0.25) / 4)
    assert out["mrr@10"] == pytest.approx((1 + 1 / 3) / 4)


@pytest.mark.slow
def test_benchmark_trains_once_and_measures_both_paths_on_each_catalogue(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "run"
    result = subprocess.run(
        [sys.executable, str(load_tool("upsr_generative_benchmark").__file__)]
        + ["--out", str(out), "--backbone", "tiny", "--data-users", "30", "--data-last", "10"]
        + ["--catalogues", "400", "--users", "6", "--epochs", "1", "--num-beams", "10"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "generative: 6/6 users" in result.stdout  # progress output
    results = json.loads((out / "results.json").read_text())
    assert "--num-beams 10" in results["command"]
    small, large = results["catalogues"]
    assert small["distractors"] == 0 and large["items"] == 400
    assert large["n_items_model"] == 400 and large["distractors"] == 400 - small["items"]
    assert small["texts_used"] == large["texts_used"] == results["model"]["texts"]
    for row in (small, large):
        assert row["users"] == 6
        for mode in ("score", "generative"):
            part = row[mode]
            assert set(part) >= {"recall@10", "ndcg@10", "users/s", "ranks"}
            assert 0 <= part["ndcg@10"] <= part["recall@10"] <= 1 and part["users/s"] > 0
        # a generated rank is among the 10 beams, or a miss
        assert all(r is None or r <= 10 for r in row["generative"]["ranks"])
        assert all(1 <= r <= row["n_items_model"] for r in row["score"]["ranks"])
        assert 0 <= row["generative"]["top10_shared_with_full_sort"] <= 1
        assert len(row["policy_choice_on_this_catalogue"]) == 2
    report = (out / "report.md").read_text()
    assert results["command"] in report and re.search(r"\|\s+400\s+\|", report)
