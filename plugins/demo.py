"""``plugzoo demo``: every available plugin beside its host's baseline, one report.

Three sizes. ``default`` is sized to finish in minutes on a 2-core CPU and still show each
stage's comparison; ``full`` runs the larger settings each stage module keeps as its
``"full"`` entry; ``quick`` is for tests of the demo itself (too small to learn). Every
stage is called as ``function(run_dir, size=...)`` and returns a
:class:`plugins.report.StageResult`.

While it runs, the demo prints each stage's expected cost and, every ``tick`` seconds,
the time left in the stage and in the whole demo: the expected costs come from
``STAGE_SECONDS`` (measured), scaled by how long the finished stages took against theirs.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

from tabulate import tabulate

from plugins.catalogue import load_callable, load_catalogue
from plugins.doctor import run_checks
from plugins.report import StageResult, write_report
from plugins.separation import CONFIG_KEY

SIZES = ("quick", "default", "full")
DOCTOR = "environment checks"

# Seconds of each stage (the time its StageResult reports), measured on the project's
# 2-core CPU machine with OMP_NUM_THREADS=2 under `nice -n 10`:
#   default: each stage run alone (`plugzoo demo --stage SPEC`), 2026-12-06 17:44-17:52 UTC,
#     the machine otherwise idle (1-minute load average 0.1 to 2.3, the stage's own
#     processes); TeachCLIP's default (fine-grained clips, frame-caption CLIP) and UPSR's
#     (with the Pop and ItemKNN anchors) from a whole idle `plugzoo demo` of 2026-12-06
#     21:27 UTC, where these two stages took 45 s and 57 s; TeachCLIP's quick and full
#     entries are still those of its stage on the embedded clips;
#   quick: one run of the quick demo's test, right after (load average 1.0 to 1.7);
#   full: one whole run of `plugzoo demo` when these were its settings (STH 28 min,
#     BagFormer 13, TeachCLIP 9, SASRec 7.5; 62 min in all) with other jobs on the machine,
#     so an idle machine is faster; UPSR's full settings are its default's; CLIP4Clip's
#     entry is the sum of its two rows' train + test seconds (60.7 and 67.7) in the demo
#     run of 2026-11-26.
# The demo rescales the stages still to run by how the finished ones compared with these.
STAGE_SECONDS = {
    DOCTOR: {"quick": 7, "default": 7, "full": 7},
    "mmaction_ext.demo:sth_motion_stage": {"quick": 25, "default": 90, "full": 1680},
    "recbole_ext.demo:sasrec_baseline": {"quick": 9, "default": 38, "full": 450},
    "recbole_ext.demo:upsr_stage": {"quick": 3, "default": 57, "full": 62},
    "retrieval_ext.demo:clip4clip_baseline_stage": {"quick": 15, "default": 50, "full": 128},
    "retrieval_ext.demo:teachclip_stage": {"quick": 25, "default": 45, "full": 540},
    "retrieval_ext.demo:bagformer_stage": {"quick": 27, "default": 47, "full": 780},
}


def check_size(size: str) -> str:
    """``size`` itself when it is one of ``SIZES``; a ``ValueError`` naming them if not."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {SIZES}, got {size!r}")
    return size


def expected_seconds(spec: str, size: str) -> tuple[float, bool]:
    """``(seconds, measured)``: the stage's entry in ``STAGE_SECONDS``, or, for a stage
    without one, the median of the size's measured stages (``measured`` False)."""
    if spec in STAGE_SECONDS:
        return float(STAGE_SECONDS[spec][size]), True
    return float(statistics.median(costs[size] for costs in STAGE_SECONDS.values())), False


def duration(seconds: float) -> str:
    """``"45 s"`` under a minute, ``"3 min 05 s"`` above."""
    seconds = max(0, round(seconds))
    return f"{seconds} s" if seconds < 60 else f"{seconds // 60} min {seconds % 60:02d} s"


class Eta:
    """Time left in the current stage and in the demo.

    Each stage's estimate is its expected cost times the pace: the seconds the finished
    stages took over the seconds they were expected to take, both counted with ``PRIOR``
    more seconds at pace 1 so that one short stage cannot swing the estimate (1 before
    any finished). A stage running past its estimate counts as done so far for the pace,
    so the stages after it are rescaled while it runs.

    Args:
        labels: The stages' names, in running order.
        expected: Their expected seconds.
        clock: Seconds, monotonic (tests pass a fake one).
    """

    PRIOR = 60.0

    def __init__(self, labels: list[str], expected: list[float], clock: Callable = time.monotonic):
        if len(labels) != len(expected):
            raise ValueError("one expected cost per stage")
        self.labels, self.expected, self.clock = list(labels), list(expected), clock
        self.taken: list[float] = []
        self.started = clock()
        self.stage_started = self.started

    def start_stage(self) -> None:
        self.stage_started = self.clock()

    def finish_stage(self) -> float:
        """Record the current stage as finished and start the next; returns its seconds."""
        now = self.clock()
        self.taken.append(now - self.stage_started)
        self.stage_started = now
        return self.taken[-1]

    @property
    def current(self) -> int:
        return len(self.taken)

    def elapsed(self) -> float:
        return self.clock() - self.stage_started

    def pace(self) -> float:
        done = sum(self.expected[: self.current]) + self.PRIOR
        taken = sum(self.taken) + self.PRIOR
        if self.current < len(self.expected):
            elapsed, estimate = self.elapsed(), self.expected[self.current]
            if elapsed > estimate * taken / done:  # running late: it counts as done so far
                return (taken + elapsed) / (done + estimate)
        return taken / done

    def stage_left(self) -> float:
        if self.current >= len(self.expected):
            return 0.0
        return max(self.expected[self.current] * self.pace() - self.elapsed(), 0.0)

    def total_left(self) -> float:
        after = sum(self.expected[self.current + 1 :])
        return self.stage_left() + after * self.pace()

    def stage_line(self) -> str:
        """Printed as a stage starts: its estimate and the demo's time left."""
        estimate = self.expected[self.current] * self.pace()
        return (
            f"  expected about {duration(estimate)}; about {duration(self.total_left())} "
            f"left in the demo"
        )

    def progress_line(self) -> str:
        """Printed while a stage runs: its elapsed time and the time left."""
        label, elapsed = self.labels[self.current], self.elapsed()
        left = self.stage_left()
        if left > 0:
            stage = f"about {duration(left)} left in it"
        else:
            estimate = self.expected[self.current] * self.pace()
            stage = f"past its estimate of {duration(estimate)}"
        so_far = duration(self.clock() - self.started)
        return (
            f"  [{label}: {duration(elapsed)} in, {stage}; about "
            f"{duration(self.total_left())} left in the demo, {so_far} so far]"
        )


class _Ticker:
    """Prints ``eta.progress_line()`` every ``interval`` seconds until stopped."""

    def __init__(self, eta: Eta, interval: float, out: Callable = print):
        self.eta, self.interval, self.out = eta, interval, out
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.wait(self.interval):
            self.out(self.eta.progress_line(), flush=True)

    def __enter__(self):
        if self.interval > 0:
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.thread.is_alive():
            self.thread.join()


def _doctor_stage() -> StageResult:
    start = time.time()
    checks = run_checks()
    return StageResult(
        name="doctor",
        title="Environment (plugzoo doctor)",
        summary="The checks of `plugzoo doctor`, run first so the report says what it ran on.",
        rows=[{"check": c.name, "ok": "yes" if c.ok else "NO", "detail": c.detail} for c in checks],
        seconds=time.time() - start,
    )


def planned_stages() -> list[tuple[str, str]]:
    """``(label, "module:function")`` of every demo stage, hosts' baselines first."""
    stages = []
    for extension in load_catalogue():
        if extension.baseline_stage:
            stages.append((f"{extension.host} baseline", extension.baseline_stage))
        for plugin in extension.plugins:
            if plugin.demo_stage:
                stages.append((f"{plugin.name} ({extension.host})", plugin.demo_stage))
    return stages


def run_demo(
    run_dir: Path, size: str = "default", only: list[str] | None = None, tick: float = 30.0
) -> int:
    """Run the demo into ``run_dir`` at ``size`` (one of ``SIZES``), printing the time left
    every ``tick`` seconds (0: only as each stage starts); returns the process exit code
    (0 when all passed)."""
    check_size(size)
    run_dir = Path(run_dir).resolve()  # stages change directory (RecBole writes into it)
    run_dir.mkdir(parents=True, exist_ok=True)
    stages = planned_stages()
    if only:
        unknown = sorted(set(only) - {spec for _, spec in stages})
        if unknown:
            raise SystemExit(
                f"plugzoo demo: unknown stage(s) {unknown}; "
                f"available: {[spec for _, spec in stages]}"
            )
        stages = [(label, spec) for label, spec in stages if spec in only]
    costs = [expected_seconds(DOCTOR, size)] + [expected_seconds(s, size) for _, s in stages]
    eta = Eta([DOCTOR] + [label for label, _ in stages], [seconds for seconds, _ in costs])
    total = len(stages) + 1
    print(
        f"plugzoo demo ({size} settings): {total} stages, expected about "
        f"{duration(eta.total_left())} on an idle 2-core CPU",
        flush=True,
    )
    print(f"[1/{total}] {DOCTOR}", flush=True)
    print(eta.stage_line(), flush=True)
    with _Ticker(eta, tick):
        doctor = _doctor_stage()
    eta.finish_stage()
    results, failures = [doctor], {}
    if any(row["ok"] != "yes" for row in doctor.rows):
        failures["doctor"] = "some environment checks failed (see the first table)"
    for index, (label, spec) in enumerate(stages, start=2):
        print(f"[{index}/{total}] {label}: {spec}", flush=True)
        measured = costs[index - 1][1]
        print(eta.stage_line() + ("" if measured else " (no measured cost)"), flush=True)
        eta.start_stage()
        try:
            with _Ticker(eta, tick):
                result = load_callable(spec)(run_dir, size=size)
        except Exception as error:  # one broken stage must not hide the others' results
            failures[spec] = f"{type(error).__name__}: {error}"
            print(f"  FAILED after {eta.finish_stage():.0f} s: {failures[spec]}", flush=True)
            continue
        eta.finish_stage()
        results.append(result)
        print(f"  done in {result.seconds:.0f} s", flush=True)
        if result.rows:
            print(tabulate(result.rows, headers="keys", floatfmt=".4f"), flush=True)
        for note in result.config.get(CONFIG_KEY, []):
            print(f"  too small to separate: {note}", flush=True)
    report = write_report(run_dir, results, failures)
    print(
        f"demo took {duration(eta.clock() - eta.started)}\nreport: {report}\n"
        f"numbers and configs: {run_dir / 'results.json'}",
        flush=True,
    )
    return 1 if failures else 0
