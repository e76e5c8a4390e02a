"""Independent training runs side by side, one process each, the CPU's cores shared out.

The demo's models are small: a second thread speeds one of them up far less than a second
process running another model does. ``run_side_by_side`` runs each call in a fresh
(spawned) process with ``cores // calls`` torch threads (at least one), so two or three
runs keep two cores busy, and returns their results in the order of the calls. With one
call, or ``processes=1``, it runs them here, one after the other, on this process's threads.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor


def cores() -> int:
    """CPU cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def _call_with_threads(threads: int, function: Callable, args: tuple, kwargs: dict):
    import torch

    torch.set_num_threads(threads)
    return function(*args, **kwargs)


def run_side_by_side(
    function: Callable, calls: list[tuple[tuple, dict]], processes: int | None = None
) -> list:
    """``[function(*args, **kwargs) for args, kwargs in calls]``, the calls run at once in
    ``processes`` spawned processes (default: one per call), each with its share of the
    cores as torch threads. ``function`` must be importable by name (a module's top-level
    function), its arguments and result picklable."""
    processes = len(calls) if processes is None else min(processes, len(calls))
    if processes <= 1:
        return [function(*args, **kwargs) for args, kwargs in calls]
    threads = max(1, cores() // processes)
    context = multiprocessing.get_context("spawn")  # no forked OpenMP or torch state
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = [
            pool.submit(_call_with_threads, threads, function, args, kwargs)
            for args, kwargs in calls
        ]
        return [future.result() for future in futures]
