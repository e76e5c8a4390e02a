"""What the LAVIS demo stages share: dataset options, per-query cost timing and its plot."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

COST_GALLERY = 10_000  # gallery items the per-query cost is measured over (stored rows tiled)
COST_QUERIES = 16
COST_KEY = f"ms per query at N={COST_GALLERY:,}"
# said in a stage's report paragraph when its models trained side by side
SIDE_BY_SIDE = (
    " Models trained side by side, a process each with its share of the cores: each one's "
    "seconds are longer than alone, and its numbers can differ slightly from a run on all "
    "threads."
)


def data_options(root: Path, builder: str = "embedded_text_video") -> list[str]:
    """``--options`` pointing an embedded config's ``builder`` at a dataset written to
    ``root`` (``annotations/{train,val,test}.json`` and ``videos/`` or ``images/``)."""
    prefix = f"datasets.{builder}.build_info"
    media = "images" if builder.endswith("image_text") else "videos"
    ann = Path(root) / "annotations"
    return [
        f"{prefix}.annotations.train.storage={ann / 'train.json'}",
        f"{prefix}.annotations.val.storage={ann / 'val.json'}",
        f"{prefix}.annotations.test.storage={ann / 'test.json'}",
        f"{prefix}.{media}.storage={Path(root) / media}",
    ]


def one_thread_ms(search: Callable[[], object], queries: int) -> float:
    """Milliseconds per query of ``search`` (which answers ``queries`` queries), timed on
    one thread after one warm-up call."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        search()  # warm-up
        start = time.perf_counter()
        search()
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return 1000 * seconds / queries


def tile(rows, count: int):
    """``rows`` repeated along the first dimension to ``count`` rows."""
    return rows.repeat((count + len(rows) - 1) // len(rows), *[1] * (rows.ndim - 1))[:count]


def cost_plot(rows: list[dict], path: Path, metric_key: str, ylabel: str, title: str) -> Path:
    """Each row's ``metric_key`` against its per-query cost (log scale), labelled."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    for number, row in enumerate(rows):
        axes.scatter(row[COST_KEY], row[metric_key], s=60)
        label = row["model"].split(" (")[0]  # the table has the long name
        offset = (6, 4) if number % 2 == 0 else (6, -12)  # neighbours' labels do not overlap
        axes.annotate(label, (row[COST_KEY], row[metric_key]), xytext=offset,
                      textcoords="offset points")  # fmt: skip
    axes.set_xscale("log")
    costs = [row[COST_KEY] for row in rows]
    axes.set_xlim(min(costs) / 3, max(costs) * 30)  # room for the labels
    axes.set_xlabel(f"{COST_KEY} (log scale, one thread)")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path
