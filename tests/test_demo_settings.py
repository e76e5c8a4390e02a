"""`plugzoo demo` without training: the sizes' settings, the time-left printer and the
"too small to separate the rows" note."""

from mmaction_ext import demo as sth_demo
from recbole_ext import demo as recbole_demo
from retrieval_ext.demo import bagformer, clip4clip, teachclip

import pytest
import yaml

from plugins import cli
from plugins import demo as demo_module
from plugins.demo import STAGE_SECONDS, Eta, duration, expected_seconds, run_demo
from plugins.report import StageResult
from plugins.separation import CONFIG_KEY, flag, separation_notes

# The settings of every stage before the default demo was made smaller (commit 423fabc):
# `plugzoo demo --full` must run exactly these, and `--quick` must stay as it was.
BEFORE = {
    "sth": {
        "quick": ({"train": 4, "val": 2, "test": 2}, 1),
        "full": ({"train": 32, "val": 8, "test": 8}, 12),
    },
    "sasrec_quick": {"epochs": 1, "hidden_size": 16, "inner_size": 32, "n_layers": 1, "n_heads": 1},
    "sasrec_config_epochs": 2,
    "upsr": {
        "quick": {"users": 30, "baseline_epochs": 2, "backbone": "tiny"},
        "full": {"users": 60, "baseline_epochs": 20, "backbone": "minilm"},
        # the history-free anchors Pop and ItemKNN joined later (seconds of compute)
        "both": {
            "models": ["Pop", "ItemKNN", "SASRec", "UPSR"],
            "last": 8,
            "epochs": 1,
            "zero_shot": False,
        },
    },
    "video_text": {
        "quick": ({"train": 48, "val": 8, "test": 8}, 3),
        "full": ({"train": 160, "val": 24, "test": 24}, 20),
    },
    "bagformer": {
        "quick": ({"train": 160, "val": 20, "test": 40}, 4, 20),
        "full": ({"train": 480, "val": 60, "test": 100}, 10, 100),
    },
}


def test_full_and_quick_settings_are_those_before_the_default_shrank():
    for size in ("quick", "full"):
        clips, epochs = BEFORE["sth"][size]
        settings = sth_demo.SETTINGS[size]
        assert (settings["clips"], settings["epochs"]) == (clips, epochs)
        assert settings["every_epoch"] is True  # the configs' own validation and checkpoints
        pairs, epochs = BEFORE["video_text"][size]
        assert (clip4clip.SETTINGS[size]["pairs"], clip4clip.SETTINGS[size]["epochs"]) == (
            pairs,
            epochs,
        )
        images, epochs, warmup = BEFORE["bagformer"][size]
        settings = bagformer.SETTINGS[size]
        assert (settings["images"], settings["epochs"], settings["warmup_steps"]) == (
            images,
            epochs,
            warmup,
        )
        upsr = recbole_demo.upsr_compare_settings(size)
        for key, value in {**BEFORE["upsr"][size], **BEFORE["upsr"]["both"]}.items():
            assert getattr(upsr, key) == value, key
    # full trains one model at a time on all threads, as before
    for module in (sth_demo, clip4clip, teachclip, bagformer):
        assert module.SETTINGS["full"]["side_by_side"] is False
    assert recbole_demo.SASREC_OVERRIDES["quick"] == BEFORE["sasrec_quick"]
    assert recbole_demo.SASREC_OVERRIDES["full"] == {}
    config = yaml.safe_load(recbole_demo.SASREC_CONFIG.read_text())
    assert config["epochs"] == BEFORE["sasrec_config_epochs"]


def test_default_settings_are_smaller_than_full():
    default, full = sth_demo.SETTINGS["default"], sth_demo.SETTINGS["full"]
    assert all(default["clips"][s] <= full["clips"][s] for s in full["clips"])
    assert default["clips"]["train"] * default["epochs"] < full["clips"]["train"] * full["epochs"]
    assert recbole_demo.SASREC_OVERRIDES["default"]["epochs"] < BEFORE["sasrec_config_epochs"]
    upsr_default = recbole_demo.upsr_compare_settings("default")
    upsr_full = recbole_demo.upsr_compare_settings("full")
    for key in ("users", "last", "epochs", "baseline_epochs"):
        assert getattr(upsr_default, key) <= getattr(upsr_full, key)
    default, full = clip4clip.SETTINGS["default"], clip4clip.SETTINGS["full"]
    assert all(default["pairs"][s] <= full["pairs"][s] for s in full["pairs"])
    assert default["epochs"] < full["epochs"]
    # TeachCLIP's fine-grained clips: every size smaller than the next
    for smaller, larger in (("quick", "default"), ("default", "full")):
        low, high = teachclip.SETTINGS[smaller], teachclip.SETTINGS[larger]
        assert all(low["clips"][s] <= high["clips"][s] for s in high["clips"])
        assert low["epochs"] < high["epochs"] and low["pretrain_epochs"] < high["pretrain_epochs"]
    default, full = bagformer.SETTINGS["default"], bagformer.SETTINGS["full"]
    assert all(default["images"][s] <= full["images"][s] for s in full["images"])
    assert default["epochs"] < full["epochs"]
    # the measured costs: the default demo fits in 10 minutes, each stage no dearer than full
    assert sum(costs["default"] for costs in STAGE_SECONDS.values()) < 600
    for costs in STAGE_SECONDS.values():
        assert costs["quick"] <= costs["default"] <= costs["full"]


def test_every_catalogued_stage_has_a_measured_cost():
    for _, spec in demo_module.planned_stages():
        assert expected_seconds(spec, "default")[1], spec
    assert expected_seconds("elsewhere:stage", "default") == (
        pytest.approx(sorted(c["default"] for c in STAGE_SECONDS.values())[3]),
        False,
    )


def test_a_stage_refuses_an_unknown_size(tmp_path):
    with pytest.raises(ValueError, match="size must be one of"):
        clip4clip.clip4clip_baseline_stage(tmp_path, size="huge")


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def test_eta_scales_the_table_by_the_pace_of_finished_stages():
    clock = FakeClock()
    eta = Eta(["a", "b", "c"], [100, 200, 300], clock=clock)
    assert eta.pace() == 1.0
    assert eta.total_left() == 600
    clock.now += 40  # stage a, 40 s in
    assert eta.stage_left() == 60 and eta.total_left() == 560
    clock.now += 140  # a took 180 s against 100 expected
    assert eta.finish_stage() == 180
    pace = (180 + Eta.PRIOR) / (100 + Eta.PRIOR)
    assert eta.pace() == pytest.approx(pace)
    assert eta.total_left() == pytest.approx(500 * pace)
    assert "expected about" in eta.stage_line()
    clock.now += 50
    line = eta.progress_line()
    assert line.startswith("  [b: 50 s in, about ")
    assert f"about {duration(200 * pace - 50)} left in it" in line
    assert "3 min 50 s so far" in line


def test_eta_rescales_while_a_stage_runs_past_its_estimate():
    clock = FakeClock()
    eta = Eta(["a", "b"], [100, 100], clock=clock)
    clock.now += 250
    assert eta.stage_left() == 0
    pace = (250 + Eta.PRIOR) / (100 + Eta.PRIOR)  # a counts as done so far
    assert eta.pace() == pytest.approx(pace)
    assert eta.total_left() == pytest.approx(100 * pace)
    assert "past its estimate of" in eta.progress_line()


def test_duration():
    assert duration(44.6) == "45 s"
    assert duration(65) == "1 min 05 s"
    assert duration(-3) == "0 s"


def test_run_demo_prints_the_time_left_and_the_notes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(
        demo_module, "planned_stages", lambda: [("Fake (host)", "nowhere:fake_stage")]
    )
    monkeypatch.setattr(
        demo_module,
        "_doctor_stage",
        lambda: StageResult(name="doctor", title="Environment", summary="S", rows=[]),
    )

    def fake_stage(run_dir, size):
        assert size == "default"
        stage = StageResult(name="fake", title="Fake", summary="S", rows=[{"model": "a", "m": 1}])
        return flag(stage, ["a and b differ by 0.010 in m."])

    monkeypatch.setattr(demo_module, "load_callable", lambda spec: fake_stage)
    assert run_demo(tmp_path, tick=0) == 0
    out = capsys.readouterr().out
    median = sorted(c["default"] for c in STAGE_SECONDS.values())[3]
    doctor = STAGE_SECONDS[demo_module.DOCTOR]["default"]
    assert "plugzoo demo (default settings): 2 stages" in out
    assert f"expected about {duration(doctor + median)}" in out
    assert "[2/2] Fake (host): nowhere:fake_stage" in out
    assert "(no measured cost)" in out
    assert "too small to separate: a and b differ by 0.010 in m." in out
    assert "**Too small to separate the rows:** a and b" in (tmp_path / "report.md").read_text()


def test_the_ticker_prints_while_a_stage_runs():
    import threading

    printed, done = [], threading.Event()
    eta = Eta(["a"], [100])

    def out(line, flush):
        printed.append(line)
        done.set()

    with demo_module._Ticker(eta, 0.01, out=out):
        assert done.wait(5)
    assert printed[0].startswith("  [a: 0 s in, about 1 min 40 s left in it")


def test_separation_flags_a_difference_within_the_sampling_error():
    rows = [{"model": "A", "top1": 0.60}, {"model": "B", "top1": 0.50}, {"model": "C", "top1": 0.0}]
    notes = separation_notes(rows, "top1", 64, items="test clips")
    # A-B: 0.10 against 2 * sqrt((0.24 + 0.25) / 64) = 0.175; A-C, B-C: separated
    assert notes == [
        "A and B differ by 0.100 in top1, within twice the standard error of a difference "
        "over 64 test clips (0.175): this setting cannot tell them apart."
    ]
    assert separation_notes(rows, "top1", 2000, items="test clips") == []
    # a tie at the ceiling is not a separation either
    assert len(separation_notes([{"model": "A", "x": 1.0}, {"model": "B", "x": 1.0}], "x", 64)) == 1


def test_separation_flags_the_seed_spread_and_a_tiny_evaluation_set():
    rows = [{"model": "UPSR", "recall@10": 30.0}, {"model": "SASRec", "recall@10": 34.0}]
    notes = separation_notes(
        rows, "recall@10", 10_000, scale=100, spread={"UPSR": 2.5, "SASRec": 2.0}
    )
    assert notes == [
        "UPSR and SASRec differ by 4.0 in recall@10, within the seed spread (standard "
        "deviations 2.5 and 2.0)."
    ]
    notes = separation_notes(rows[:1], "recall@10", 12, scale=100, items="test users")
    assert notes == [
        "The evaluation set is tiny: 12 test users, so one item moves recall@10 by 8.3."
    ]


def test_flag_writes_the_notes_into_the_report_paragraph_and_the_config():
    stage = flag(StageResult(name="s", title="T", summary="What ran."), ["X and Y tie."])
    assert stage.summary == "What ran.\n\n**Too small to separate the rows:** X and Y tie."
    assert stage.config[CONFIG_KEY] == ["X and Y tie."]
    clean = flag(StageResult(name="s", title="T", summary="What ran."), [])
    assert clean.summary == "What ran." and clean.config[CONFIG_KEY] == []


def test_cli_demo_sizes(monkeypatch, tmp_path):
    seen = {}

    def fake_run_demo(run_dir, size, only, tick):
        seen.update(size=size, tick=tick)
        return 0

    monkeypatch.setattr(demo_module, "run_demo", fake_run_demo)
    for flags, size in (([], "default"), (["--quick"], "quick"), (["--full"], "full")):
        assert cli.main(["demo", "--out", str(tmp_path), *flags]) == 0
        assert seen == {"size": size, "tick": 30.0}
    with pytest.raises(SystemExit):
        cli.main(["demo", "--quick", "--full"])


def test_side_by_side_runs_each_call_in_its_own_process_with_its_share_of_the_cores():
    import os

    import torch

    from plugins.processes import cores, run_side_by_side

    share = max(1, cores() // 2)
    assert run_side_by_side(torch.get_num_threads, [((), {}), ((), {})]) == [share, share]
    pids = run_side_by_side(os.getpid, [((), {}), ((), {})])
    assert os.getpid() not in pids and len(set(pids)) == 2
    assert run_side_by_side(os.getpid, [((), {}), ((), {})], processes=1) == [os.getpid()] * 2
