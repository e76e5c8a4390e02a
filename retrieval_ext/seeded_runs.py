"""What the embedded-data comparisons
(``tools/experiments/teachclip/teachclip_compare_teachers.py``,
``tools/experiments/teachclip/teachclip_ablation.py``) share: one recorded training run per
(row, seed), and the mean ± spread table over seeds."""

from __future__ import annotations

from retrieval_ext.launch import run

from plugins.benchmarking import mean_std_text as summarise


def seeded_run(name: str, seed: int, config, options: list[str]) -> dict:
    """Train and test ``config`` with ``options``; the record of the run (its test metrics
    with the full config that produced them, and its output folder), printed as one
    progress line."""
    result = run(str(config), options)
    metrics = result["test"]["test"]
    print(
        f"{name} seed {seed}: t2v R@1 {metrics['t2v_r1']:.1f}, v2t R@1 "
        f"{metrics['v2t_r1']:.1f} ({result['seconds']:.0f} s)",
        flush=True,
    )
    return {
        "model": name,
        "seed": seed,
        "seconds": round(result["seconds"], 1),
        "output_dir": result["output_dir"],
        "metrics": metrics,
        "config": result["config"],
    }


def seed_table(
    runs: list[dict], names: list[str], seeds: list[int], columns, dataset, single=()
) -> str:
    """A Markdown table, one row per name (mean ± std of ``columns`` over its runs of
    ``seeds``), after the ``single`` runs (one row each, whatever their seed), and the note
    saying what the numbers are."""
    header = ["model", *columns, "train + test s"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for one in single:
        cells = [f"{one['metrics'][c]:.1f}" for c in columns]
        lines.append("| " + " | ".join([one["model"], *cells, f"{one['seconds']:.0f}"]) + " |")
    for name in names:
        mine = [r for r in runs if r["model"] == name and r["seed"] in seeds]
        if not mine:
            continue
        cells = [summarise([r["metrics"][c] for r in mine]) for c in columns]
        seconds = summarise([r["seconds"] for r in mine])
        lines.append("| " + " | ".join([name, *cells, seconds]) + " |")
    note = (
        f"\n\n{len(seeds)} seeds ({', '.join(map(str, seeds))}); test: "
        f"{dataset['splits']['test']} clips, {dataset['captions']['test']} captions; "
        "recall in percent, mean ± sample standard deviation over seeds.\n"
    )
    return "\n".join(lines) + note
