"""The demo report: Markdown with tables and PNG plots, plus JSON of every number."""

from __future__ import annotations

import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tabulate import tabulate


@dataclass
class StageResult:
    """What one demo stage produced.

    Args:
        name: Stage identifier, e.g. ``"recbole.sasrec_baseline"``.
        title: Heading in the report.
        summary: One paragraph on what ran and how to read the table.
        rows: Table rows (same keys in every row); every number also goes to the JSON.
        config: The full config that produced the numbers.
        figures: PNG files (inside the run directory) to show under the table.
        seconds: Wall time of the stage.
    """

    name: str
    title: str
    summary: str
    rows: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    seconds: float = 0.0


def jsonable(value):
    """Turn config values (numpy/torch scalars and arrays, devices, enums, paths) into JSON
    values; non-finite floats become strings ("nan", "inf"), which JSON cannot hold."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if hasattr(value, "tolist") and callable(value.tolist):  # numpy / torch, any shape
        try:
            return jsonable(value.tolist())
        except (TypeError, ValueError, RuntimeError):
            pass
    return str(value)


def _fmt(value):
    return f"{value:.4f}" if isinstance(value, float) else value


def write_report(run_dir: Path, stages: list[StageResult], failures: dict[str, str]) -> Path:
    """Write ``report.md`` and ``results.json`` into ``run_dir``; returns the Markdown path."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = [
        "# plugzoo demo report",
        "",
        f"Run at {time.strftime('%Y-%m-%d %H:%M:%S %Z')} on {platform.node()} "
        f"({platform.machine()}, Python {platform.python_version()}).",
        "Every number below is in `results.json` next to this file, with the config that "
        "produced it.",
        "",
    ]
    for stage in stages:
        lines += [f"## {stage.title}", "", stage.summary, ""]
        if stage.rows:
            table = [{k: _fmt(v) for k, v in row.items()} for row in stage.rows]
            lines += [tabulate(table, headers="keys", tablefmt="github"), ""]
        lines += [f"![{Path(f).stem}]({f})" for f in stage.figures]
        lines += ["", f"_Stage `{stage.name}` took {stage.seconds:.1f} s._", ""]
    if failures:
        lines += ["## Failed stages", ""]
        lines += [f"- `{name}`: {reason}" for name, reason in failures.items()]
        lines.append("")
    report = run_dir / "report.md"
    report.write_text("\n".join(lines))
    results = {
        "stages": [jsonable(asdict(stage)) for stage in stages],
        "failures": failures,
    }
    (run_dir / "results.json").write_text(json.dumps(results, indent=2, allow_nan=False))
    return report
