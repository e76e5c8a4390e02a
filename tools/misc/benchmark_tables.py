"""Render the measured tables of docs/benchmarks/results/<paper>.json into the markdown.

    python tools/misc/benchmark_tables.py            # rewrite every table block
    python tools/misc/benchmark_tables.py --check    # exit 1 and print a diff if a block is stale
    python tools/misc/benchmark_tables.py docs/benchmarks/upsr.md   # only these files

Every measured table lives once, as data, in ``docs/benchmarks/results/<paper>.json``:

    {"paper": "upsr",
     "tables": {
       "<table-id>": {
         "caption": "what was measured, on what",         (optional)
         "measured": {"date": "...", "commit": "...", "threads": "..."},   (optional)
         "command": "the command that measured it" or a list of lines,      (optional)
         "columns": ["name", {"name": "NDCG@10", "format": "{:.4f} ± {:.4f}"}, ...],
         "rows": [["SASRec", [0.0645, 0.0031], ...], ...],
         "note": "a paragraph under the table"}}}          (optional)

A cell is a string (written as it is), null (empty), a number or a list of numbers
(formatted with the column's ``format``, a Python format string; without one a number is
written with ``str``; a single number in a column whose format takes several, such as one
seed's row in a "mean ± std" column, is written with the format's first field), or
``{"value": ..., "format": "..."}`` for a cell written its own way. A row may also be
``{"from": "<paper>/<table-id>", "row": "<first cell>"}``: that row of another table,
written with that table's formats, so a measurement shown in two tables is stored once
(``"label"`` replaces its first cell).

A markdown file shows a table with a block:

    <!-- table: <paper>/<table-id> -->
    (generated text)
    <!-- /table -->

The tool rewrites everything between the two comments in docs/benchmarks/*.md and in
configs/**/README.md (or in the files given). An unknown paper or table id, a block that
is not closed and a row reference that does not resolve are errors naming the file. Blocks
inside fenced code blocks are examples and left alone.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = Path("docs/benchmarks/results")
OPEN = re.compile(r"^<!-- table: (?P<id>[^ ]*) -->\s*$")
CLOSE = re.compile(r"^<!-- /table -->\s*$")
FIELD = re.compile(r"(?<!\{)\{[^{}]*\}")
FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
WRAP = 100


class TableError(Exception):
    """A block or a results file the tool cannot render; the message names the file."""


def markdown_files(root: Path) -> list[Path]:
    """The files whose blocks the tool owns: docs/benchmarks/*.md and configs/**/README.md."""
    files = sorted((root / "docs" / "benchmarks").glob("*.md"))
    files += sorted((root / "configs").rglob("README.md"))
    return files


class Results:
    """The tables of docs/benchmarks/results/*.json, loaded on first use."""

    def __init__(self, root: Path):
        self.root = root
        self._papers: dict[str, dict] = {}

    def path(self, paper: str) -> Path:
        return self.root / RESULTS_DIR / f"{paper}.json"

    def tables(self, paper: str, where: str, where_id: str) -> dict:
        if paper not in self._papers:
            path = self.path(paper)
            if not path.is_file():
                raise TableError(
                    f"{where}: unknown table id {where_id!r}: "
                    f"no results file {RESULTS_DIR / (paper + '.json')}"
                )
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except json.JSONDecodeError as error:
                raise TableError(f"{RESULTS_DIR / path.name}: invalid JSON: {error}") from None
            self._papers[paper] = data.get("tables", {})
        return self._papers[paper]

    def table(self, table_id: str, where: str) -> dict:
        paper, sep, name = table_id.partition("/")
        if not sep or not paper or not name:
            raise TableError(f"{where}: table id {table_id!r} is not '<paper>/<table-id>'")
        tables = self.tables(paper, where, table_id)
        if name not in tables:
            known = ", ".join(sorted(tables)) or "none"
            raise TableError(
                f"{where}: unknown table id {table_id!r} "
                f"({RESULTS_DIR / (paper + '.json')} has: {known})"
            )
        return tables[name]


def column_format(column) -> str | None:
    return column.get("format") if isinstance(column, dict) else None


def column_name(column) -> str:
    return column["name"] if isinstance(column, dict) else str(column)


def format_cell(value, fmt: str | None, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        fmt = value.get("format", fmt)
        value = value.get("value")
    try:
        if isinstance(value, list):
            if fmt is None:
                return " ".join(str(v) for v in value)
            return fmt.format(*value)
        if fmt is None:
            return str(value)
        fields = FIELD.findall(fmt)
        if len(fields) > 1:  # one number in a column of several (one seed in a mean ± std)
            fmt = fmt[: fmt.index(fields[0]) + len(fields[0])]
        return fmt.format(value)
    except (ValueError, IndexError, TypeError) as error:
        raise TableError(f"{where}: cannot format {value!r} with {fmt!r}: {error}") from None


def row_cells(results: Results, table: dict, row, where: str, depth: int = 0) -> list[str]:
    """One row of ``table`` as strings (a reference row resolved into its source table)."""
    columns = table["columns"]
    if isinstance(row, dict):
        source_id = row.get("from", "")
        if depth > 4:
            raise TableError(f"{where}: row references loop at {source_id!r}")
        source = results.table(source_id, where)
        label = row.get("row")
        matches = [r for r in source["rows"] if not isinstance(r, dict) and r[0] == label]
        if len(matches) != 1:
            raise TableError(f"{where}: {source_id!r} has no single row {label!r}")
        cells = row_cells(results, source, matches[0], f"{where} -> {source_id}", depth + 1)
        if "label" in row:
            cells[0] = row["label"]
    else:
        if len(row) != len(columns):
            raise TableError(
                f"{where}: row {row[0]!r} has {len(row)} cells for {len(columns)} columns"
            )
        cells = [
            format_cell(value, column_format(column), where)
            for value, column in zip(row, columns, strict=True)
        ]
    if len(cells) != len(columns):
        raise TableError(f"{where}: row {cells[0]!r} has {len(cells)} cells, not {len(columns)}")
    return cells


def table_line(cells: list[str]) -> str:
    return "|" + "|".join(f" {cell} " if cell else " " for cell in cells) + "|"


def wrap(text: str) -> str:
    return "\n".join(
        textwrap.fill(paragraph, WRAP, break_long_words=False, break_on_hyphens=False)
        for paragraph in text.split("\n")
    )


def measured_line(measured: dict) -> str:
    parts = []
    if measured.get("date"):
        parts.append(f"Measured {measured['date']}")
    if measured.get("commit"):
        parts.append(f"at commit `{measured['commit']}`")
    text = " ".join(parts)
    if measured.get("threads"):
        threads = f"threads: {measured['threads']}"
        text = f"{text}; {threads}" if text else threads[0].upper() + threads[1:]
    return wrap(text + ".") if text else ""


def render(results: Results, table_id: str, where: str) -> str:
    """The generated text of one block (without the two comment lines)."""
    table = results.table(table_id, where)
    where = f"{where}: {table_id}"
    parts = []
    if table.get("caption"):
        parts.append(wrap(table["caption"]))
    if table.get("measured"):
        parts.append(measured_line(table["measured"]))
    command = table.get("command")
    if command:
        lines = command if isinstance(command, list) else command.split("\n")
        parts.append("```bash\n" + "\n".join(lines) + "\n```")
    columns = table["columns"]
    lines = [table_line([column_name(c) for c in columns]), "|" + "---|" * len(columns)]
    lines += [table_line(row_cells(results, table, row, where)) for row in table["rows"]]
    parts.append("\n".join(lines))
    if table.get("note"):
        parts.append(wrap(table["note"]))
    return "\n\n".join(part for part in parts if part)


def rewrite(text: str, results: Results, name: str) -> str:
    """``text`` with every table block regenerated."""
    out: list[str] = []
    lines = text.split("\n")
    fence = None  # the fence of the code block we are in: blocks there are examples
    i = 0
    while i < len(lines):
        line = lines[i]
        marker = FENCE.match(line)
        if marker and (fence is None or marker[1].startswith(fence)):
            fence = marker[1] if fence is None else None
        match = None if fence else OPEN.match(line)
        if not fence and CLOSE.match(line):
            raise TableError(f"{name}:{i + 1}: '<!-- /table -->' without an opening block")
        if not match:
            out.append(line)
            i += 1
            continue
        table_id = match["id"]
        end = i + 1
        while end < len(lines) and not CLOSE.match(lines[end]):
            if OPEN.match(lines[end]):
                raise TableError(f"{name}:{end + 1}: block {table_id!r} is not closed")
            end += 1
        if end == len(lines):
            raise TableError(f"{name}:{i + 1}: block {table_id!r} is not closed")
        out.append(line)
        out.extend(render(results, table_id, f"{name}:{i + 1}").split("\n"))
        out.append(lines[end])
        i = end + 1
    return "\n".join(out)


def run(root: Path, files: list[Path] | None, check: bool, out=None) -> int:
    """Rewrite (or, with ``check``, compare) the blocks; 1 if ``check`` found a stale one."""
    out = out or sys.stdout
    results = Results(root)
    stale = 0
    for path in files if files else markdown_files(root):
        path = path.resolve()
        name = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        text = path.read_text(encoding="utf-8")
        new = rewrite(text, results, name)
        if new == text:
            continue
        if check:
            stale += 1
            out.writelines(
                difflib.unified_diff(
                    text.splitlines(keepends=True),
                    new.splitlines(keepends=True),
                    f"{name} (committed)",
                    f"{name} (generated)",
                )
            )
        else:
            path.write_text(new, encoding="utf-8")
            print(f"rewrote {name}", file=out)
    if stale:
        print(
            f"{stale} file(s) differ from the generated tables; "
            "run python tools/misc/benchmark_tables.py",
            file=out,
        )
    return 1 if stale else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path, help="markdown files (default: all)")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if stale")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root")
    args = parser.parse_args(argv)
    try:
        return run(args.root.resolve(), args.files, args.check)
    except TableError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
