"""``plugzoo demo``: every available plugin beside its host's baseline, one report."""

from __future__ import annotations

import time
from pathlib import Path

from tabulate import tabulate

from plugins.catalogue import load_callable, load_catalogue
from plugins.doctor import run_checks
from plugins.report import StageResult, write_report


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


def run_demo(run_dir: Path, quick: bool = False, only: list[str] | None = None) -> int:
    """Run the demo into ``run_dir``; returns the process exit code (0 when all passed)."""
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
    total = len(stages) + 1
    print(f"[1/{total}] environment checks", flush=True)
    doctor = _doctor_stage()
    results, failures = [doctor], {}
    if any(row["ok"] != "yes" for row in doctor.rows):
        failures["doctor"] = "some environment checks failed (see the first table)"
    for index, (label, spec) in enumerate(stages, start=2):
        print(f"[{index}/{total}] {label}: {spec}", flush=True)
        start = time.time()
        try:
            result = load_callable(spec)(run_dir, quick=quick)
        except Exception as error:  # one broken stage must not hide the others' results
            failures[spec] = f"{type(error).__name__}: {error}"
            print(f"  FAILED after {time.time() - start:.0f} s: {failures[spec]}", flush=True)
            continue
        results.append(result)
        print(f"  done in {result.seconds:.0f} s", flush=True)
        if result.rows:
            print(tabulate(result.rows, headers="keys", floatfmt=".4f"), flush=True)
    report = write_report(run_dir, results, failures)
    print(f"report: {report}\nnumbers and configs: {run_dir / 'results.json'}", flush=True)
    return 1 if failures else 0
