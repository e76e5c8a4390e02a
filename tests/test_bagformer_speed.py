"""tools/analysis_tools/bagformer_speed.py: ALBEF's ITC + ITM re-rank against BagFormer's
recall and recall + rank, on the CPU-sized configs; the rounding of derived cells to the
error of their checks, and the refusals. No timing is asserted."""

import json
from argparse import Namespace

import pytest
from conftest import REPO_ROOT, load_tool

speed = load_tool("bagformer_speed")
CONFIGS = REPO_ROOT / "configs" / "lavis"


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from retrieval_ext.datasets.image_text_synthetic import write_image_text_dataset

    root = tmp_path_factory.mktemp("image_text")
    write_image_text_dataset(root, {"train": 2, "val": 2, "test": 4}, seed=4)
    return root


def _args(data, out, *extra):
    return [
        "--albef-cfg-path",
        str(CONFIGS / "albef" / "embedded.yaml"),
        "--bagformer-cfg-path",
        str(CONFIGS / "bagformer" / "embedded.yaml"),
        "--captions",
        str(data / "annotations" / "test.json"),
        "--dictionary",
        str(data / "entities.txt"),
        "--out",
        str(out),
        *extra,
    ]


def test_round_to_error_keeps_the_digits_the_error_allows():
    assert speed.round_to_error(790_595, 0.01) == 791_000  # +-7,906: thousands
    assert speed.round_to_error(790_595, 0.05) == 790_000  # +-39,530: ten-thousands
    assert speed.round_to_error(790_595, 0.2) == 800_000
    assert speed.round_to_error(790_595, 0.0) == 791_000  # three significant digits at most
    assert speed.round_to_error(790_595, 5.0) == 800_000  # one significant digit at least
    assert speed.round_to_error(13.46, 0.02) == pytest.approx(13.5)
    assert speed.round_to_error(0.01234, 0.1) == pytest.approx(0.012)
    assert speed.relative_error(10.0, 12.0) == pytest.approx(0.2)


def _run_with(checks, batch=4):
    """A Run holding only what the derivation reads: the batch and the checks' errors."""
    run = speed.Run.__new__(speed.Run)
    run.batch = ["a caption"] * batch
    run.result = {"checks": {name: {"error": e} for name, e in checks.items()}}
    return run


def test_a_check_times_the_full_call_and_its_parts_together_and_scales_the_parts(monkeypatch):
    from plugins.benchmarking import Timing

    seen = {}

    def fake_time_calls(calls, repeats):  # the medians a real run would measure
        seen.update(names=list(calls), repeats=repeats)
        medians = {"full": 1.0, "stage0": 0.2, "stage1": 0.1}
        return {name: Timing([medians[name]], [medians[name]]) for name in calls}

    monkeypatch.setattr(speed, "time_calls", fake_time_calls)
    run = _run_with({})
    run.args = Namespace(check_repeats=3)
    error = run.check("maxsim_scaling_latency_N20000", print, [(1, print), (5, print)])
    assert seen == {"names": ["full", "stage0", "stage1"], "repeats": 3}  # one interleaved set
    assert error == pytest.approx(0.3)  # estimate 0.2 + 5 x 0.1 = 0.7 against 1.0
    check = run.result["checks"]["maxsim_scaling_latency_N20000"]
    assert check["full_ms"] == 1000 and check["estimate_ms"] == pytest.approx(700)


def test_derived_cells_take_the_largest_error_of_their_checks_and_ratios_add_them():
    run = _run_with(
        {
            "maxsim_scaling_latency_N20000": 0.04,
            "maxsim_scaling_latency_N40000": 0.08,
            "albef_stages": 0.01,
            "albef_rerank_queries": 0.02,
            "bagformer_stages": 0.03,
        }
    )
    assert run.error_of(["maxsim_scaling_latency"]) == 0.08  # every N's check
    assert run.error_of([]) is None
    raw = [
        {"N": 100_000, "path": "ALBEF ITC + ITM re-rank", "k": 16, "latency_s": 2.123456,
         "latency_basis": "stages", "batch_s": 80.0, "batch_basis": "stages",
         "depends_on": ["albef_stages", "albef_rerank_queries"]},
        {"N": 100_000, "path": "BagFormer recall", "k": None, "latency_s": 7.906,
         "latency_basis": "scaled", "batch_s": 40.0, "batch_basis": "scaled",
         "depends_on": ["maxsim_scaling_latency"]},
        {"N": 100_000, "path": "BagFormer recall + rank", "k": 16, "latency_s": 9.0,
         "latency_basis": "scaled", "batch_s": 60.0, "batch_basis": "scaled",
         "depends_on": ["maxsim_scaling_latency", "bagformer_stages"]},
    ]  # fmt: skip
    albef, recall, ranked = run.finish(raw, [16])
    assert albef["check_error"] == 0.02 and albef["latency_ms"] == 2120  # +-42 ms: tens
    assert albef["latency_ms_unrounded"] == pytest.approx(2123.456)
    assert recall["latency_ms"] == 7900 and recall["qps"] == pytest.approx(0.1)  # 4 / 40 s
    (ratio,) = run.result["ratios"]
    assert ratio["ratio_error_recall"] == pytest.approx(0.02 + 0.08)
    assert ratio["latency_ratio_recall"] == pytest.approx(0.27)  # 2.123 / 7.906 = 0.2686
    assert ratio["throughput_ratio_recall"] == pytest.approx(2.0)  # 0.1 / 0.05 q/s
    (slower,) = run.result["slower_than_albef"]
    assert slower.startswith("N = 100,000, k = 16: BagFormer recall") and "7,900 ms" in slower


def test_speed_run_measures_scales_checks_and_indexes_at_tiny_size(data, tmp_path):
    out = tmp_path / "speed"
    # 8 images fit the memory bound, 40 do not: scaled from chunks of 8, checked at 16; the
    # index of 40 fits: codes, one chunk and a search's float32 copy of its few candidates
    extra = ["--gallery", "8", "40", "--k-test", "2", "4", "--query-batch", "3"]
    extra += ["--chunk", "8", "--memory-gb", "0.0005", "--seconds", "0.01"]
    extra += ["--check-repeats", "1", "--index-gallery", "40", "--index-cells", "8"]
    extra += ["--index-pq-bytes", "8", "--index-tokens-per-bag", "1", "--index-nprobe", "2", "8"]
    assert speed.main(_args(data, out, *extra, "--index-queries", "3")) == 0
    result = json.loads((out / "results.json").read_text())
    rows = {(r["N"], r["path"], r["k"]): r for r in result["rows"]}
    assert len(rows) == 2 * (1 + 2 + 1 + 2)  # per N: ITC, ITC + ITM x2, recall, recall + rank x2
    assert rows[(8, "BagFormer recall", None)]["latency_basis"] == "measured"
    assert rows[(8, "ALBEF ITC + ITM re-rank", 4)]["latency_basis"] == "stages"
    scaled = rows[(40, "BagFormer recall", None)]
    assert scaled["latency_basis"] == "scaled" and scaled["throughput_basis"] == "scaled"
    scaling = [result["checks"][f"maxsim_scaling_{s}_N16"]["error"] for s in ("latency", "batch")]
    assert scaled["check_error"] == max(scaling)
    assert set(result["checks"]) == {
        "albef_rerank_queries",
        "bagformer_rerank_queries",
        "maxsim_scaling_latency_N16",
        "maxsim_scaling_batch_N16",
        "albef_stages",
        "bagformer_stages",
    }
    assert all(c["full_ms"] > 0 and c["estimate_ms"] > 0 for c in result["checks"].values())
    costs = result["per_candidate"]
    assert set(costs) == {"albef_itm_ms", "bagformer_itm_ms", "maxsim_us", "itc_dot_us"}
    assert all(v > 0 for v in costs.values())
    assert [(r["N"], r["k"]) for r in result["ratios"]] == [(8, 2), (8, 4), (40, 2), (40, 4)]
    assert result["albef_image_tokens"] == result["bagformer_image_tokens"] == 37
    assert [(r["N"], r["nprobe"]) for r in result["index_rows"]] == [(40, 2), (40, 8)]
    index_row = result["index_rows"][1]
    assert 0 <= index_row["recall@10_vs_exact"] <= 1 and index_row["refine_factor"] == 4
    assert index_row["latency_ms"] > index_row["search_ms"]  # the text encoding is added
    assert index_row["albef_k2_over_index"] > 0 and index_row["albef_k4_over_index"] > 0
    assert result["bagging"]["captions"] == 12 and result["peak_rss_gb"] > 0
    report = (out / "report.md").read_text()
    assert "scaled, ±" in report and "(measured)" in report
    assert not list(out.glob("*.npy"))  # the memmap store is removed after its row
    tables = json.loads((out / "tables.json").read_text())
    assert set(tables) == {"speed", "speed-ratios", "speed-index"}
    assert len(tables["speed"]["rows"]) == len(rows) and len(tables["speed-ratios"]["rows"]) == 4
    assert tables["speed-index"]["columns"][-2:] == ["ALBEF k=2 / index", "ALBEF k=4 / index"]
    command = tables["speed"]["command"]
    assert "--gallery 8 40" in command and "--index-nprobe 2 8" in command
    assert "--report-only" not in command and "--captions" in command
    # the docs' entries are rewritten from results.json alone
    (out / "tables.json").unlink()
    assert speed.main(_args(data, out, "--report-only")) == 0
    assert json.loads((out / "tables.json").read_text()) == tables


def test_speed_refuses_settings_it_cannot_run(data, tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="--k-test 16 exceeds the smallest --gallery 8"):
        speed.main(_args(data, tmp_path, "--gallery", "8", "--k-test", "16"))
    args = Namespace(
        index_gallery=[1_000_000], index_kind="ivfpq", index_pq_bytes=32, chunk=4096,
        index_refine_factor=4, memory_gb=6.0, index_tokens_per_bag=256,
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"1,000,000 images x 257 tokens x 256 dims needs about"):
        speed.check_memory(args, 257, 256, 12)
    args.index_gallery = [100_000]
    speed.check_memory(args, 257, 256, 12)  # codes and ids of 25.7M tokens: about 1 GB
    # the float32 copy of a search's candidates counts: 12 bags x 256 tokens -> 3,072 images
    args.memory_gb = 4.5
    with pytest.raises(ValueError, match="float32 tokens of up to 3,072 candidates"):
        speed.check_memory(args, 257, 256, 12)
    speed.check_memory(args, 257, 256, 1)  # 256 candidates fit
    args.store_dir, args.out = tmp_path, tmp_path
    disk = speed.shutil.disk_usage(tmp_path)
    monkeypatch.setattr(speed.shutil, "disk_usage", lambda _: disk._replace(free=10 * 2**30))
    with pytest.raises(ValueError, match="token file needs 12.3 GiB, 10.0 GiB free"):
        speed.check_disk(args, 257, 256)  # 100k x 257 x 256 float16


def test_report_only_names_a_missing_or_broken_results_file(data, tmp_path):
    with pytest.raises(FileNotFoundError, match="--report-only: no results.json in"):
        speed.main(_args(data, tmp_path, "--report-only"))
    (tmp_path / "results.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"results.json is not valid JSON"):
        speed.main(_args(data, tmp_path, "--report-only"))
