"""What plugzoo's speed and cost benchmarks and seed comparisons share: a timer, thread
pinning, the seed summary (mean and sample standard deviation), the machine stamp recorded
with every measurement, and the writer of a run's JSON and Markdown outputs.

Timing protocol (:func:`time_calls`): one untimed warm-up call, then repeats; several calls
measured together are interleaved, one call of each per round, so that load drift on a
shared machine hits every call alike. Both the wall time and the calling thread's CPU time
are recorded: the CPU time excludes the time the thread waited for a core, so a busy machine
inflates it far less (with one torch thread, where torch computes in the calling thread).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


# --- threads ------------------------------------------------------------------------------


def set_threads(threads: int) -> None:
    """Pin torch's intra-op threads and, when FAISS is loaded, FAISS's OpenMP threads to
    ``threads``."""
    import torch

    torch.set_num_threads(threads)
    faiss = sys.modules.get("faiss")
    if faiss is not None:
        faiss.omp_set_num_threads(threads)


# --- timing -------------------------------------------------------------------------------


@dataclass
class Timing:
    """The seconds of each timed call: wall clock and the calling thread's CPU time."""

    seconds: list[float]
    cpu_seconds: list[float]

    @property
    def median(self) -> float:
        """Median wall seconds."""
        return statistics.median(self.seconds)

    @property
    def cpu_median(self) -> float:
        """Median CPU seconds of the calling thread."""
        return statistics.median(self.cpu_seconds)


def time_calls(
    calls: Mapping[str, Callable[[], object]], repeats: int, *, warmup: bool = True
) -> dict[str, Timing]:
    """Time each zero-argument call of ``calls``: with ``warmup``, one untimed call of each
    first; then ``repeats`` rounds, each calling every call once in turn."""
    wall = {name: [] for name in calls}
    cpu = {name: [] for name in calls}
    if warmup:
        for call in calls.values():
            call()
    for _ in range(repeats):
        for name, call in calls.items():
            start, start_cpu = time.perf_counter(), time.thread_time()
            call()
            cpu[name].append(time.thread_time() - start_cpu)
            wall[name].append(time.perf_counter() - start)
    return {name: Timing(wall[name], cpu[name]) for name in calls}


def median_seconds(call: Callable[[], object], repeats: int, *, warmup: bool = True) -> float:
    """Median wall seconds of ``repeats`` calls of ``call`` (after one untimed call with
    ``warmup``)."""
    return time_calls({"call": call}, repeats, warmup=warmup)["call"].median


def median_seconds_within(
    call: Callable[[], object], seconds: float, at_least: int = 3, at_most: int = 50
) -> float:
    """Median wall seconds of ``call`` in about ``seconds`` of timing: a first call (the
    warm-up, or the measurement itself when it alone takes longer than ``seconds``: the
    warm-up effects are negligible at that cost), then calls while under ``seconds``, at
    least ``at_least`` and at most ``at_most`` of them."""
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    if first > seconds:
        return first
    times, begin = [], time.perf_counter()
    while len(times) < at_least or (time.perf_counter() - begin < seconds and len(times) < at_most):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# --- seed summaries -----------------------------------------------------------------------


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation of one measurement over seeds (standard
    deviation 0.0 for a single value)."""
    values = list(values)
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def mean_std_text(values: list[float], digits: int = 1) -> str:
    """``"mean ± std"`` of :func:`mean_std` with ``digits`` decimals; a single value is
    written alone (a standard deviation needs two)."""
    values = list(values)
    if len(values) < 2:
        return f"{values[0]:.{digits}f}"
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


# --- the machine --------------------------------------------------------------------------


def git_commit(root: Path = REPO_ROOT) -> str | None:
    """The commit checked out in ``root`` (``"<hash>+"`` when tracked files differ from it),
    or None outside a git checkout."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+" if changed else "")


def machine_stamp() -> dict:
    """What a measurement ran on and next to: platform, CPU count, torch's threads and
    version (when torch is loaded), the 1/5/15-minute load averages at the call, and the
    git commit of the code."""
    torch = sys.modules.get("torch")
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "torch": getattr(torch, "__version__", None),
        "torch_threads": torch.get_num_threads() if torch is not None else None,
        "load_average": list(os.getloadavg()),
        "commit": git_commit(),
    }


# --- outputs ------------------------------------------------------------------------------


def write_results(
    out: Path,
    results: object = None,
    markdown: str | None = None,
    *,
    json_name: str = "results.json",
    markdown_name: str = "report.md",
    indent: int = 1,
    default: Callable | None = None,
) -> None:
    """Write a run's outputs into the folder ``out`` (created): ``results`` as JSON in
    ``json_name`` and ``markdown`` as it is in ``markdown_name``; either may be left out
    (a run that rewrites its JSON after every step writes the Markdown once, at the end).
    ``default`` converts values JSON cannot hold, as in :func:`json.dumps`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if results is not None:
        (out / json_name).write_text(json.dumps(results, indent=indent, default=default))
    if markdown is not None:
        (out / markdown_name).write_text(markdown)
