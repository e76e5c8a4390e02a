"""The measured tables in the markdown are the ones docs/benchmarks/results/*.json generate."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pytest
from conftest import REPO_ROOT, load_tool

tables = load_tool("benchmark_tables")

PAPERS = ("upsr", "sth", "teachclip", "bagformer", "clip4clip", "albef")


def copy_benchmarks(root: Path) -> Path:
    """docs/benchmarks (pages and results) copied under ``root``, which then acts as the
    repository root."""
    shutil.copytree(REPO_ROOT / "docs" / "benchmarks", root / "docs" / "benchmarks")
    return root


def test_committed_markdown_equals_the_generated_tables():
    out = io.StringIO()
    status = tables.run(REPO_ROOT, None, check=True, out=out)
    assert status == 0, (
        "tables differ from docs/benchmarks/results/*.json; run "
        "python tools/misc/benchmark_tables.py\n" + out.getvalue()
    )


@pytest.mark.parametrize("paper", PAPERS)
def test_every_paper_has_a_headline_table_for_its_readme(paper):
    data = json.loads((REPO_ROOT / "docs/benchmarks/results" / f"{paper}.json").read_text())
    assert data["paper"] == paper
    assert "headline" in data["tables"]
    assert tables.render(tables.Results(REPO_ROOT), f"{paper}/headline", "test").count("\n|") > 2


def test_a_changed_number_makes_check_fail(tmp_path, capsys):
    root = copy_benchmarks(tmp_path)
    assert tables.main(["--check", "--root", str(root)]) == 0
    path = root / "docs/benchmarks/results/upsr.json"
    data = json.loads(path.read_text())
    headline = data["tables"]["encoder-decoder-table"]
    row = next(r for r in headline["rows"] if r[0] == "UPSR")
    assert row[3] == [0.0146, 0.0022]  # NDCG@10, mean and standard deviation
    row[3] = [0.0147, 0.0022]
    path.write_text(json.dumps(data))
    capsys.readouterr()

    assert tables.main(["--check", "--root", str(root)]) == 1
    diff = capsys.readouterr().out
    assert "-| UPSR | 3 | 0.0297 ± 0.0018 | 0.0146 ± 0.0022" in diff
    assert "+| UPSR | 3 | 0.0297 ± 0.0018 | 0.0147 ± 0.0022" in diff
    assert "docs/benchmarks/upsr.md" in diff

    assert tables.main(["--root", str(root)]) == 0  # regenerate
    assert "0.0147 ± 0.0022" in (root / "docs/benchmarks/upsr.md").read_text()
    assert tables.main(["--check", "--root", str(root)]) == 0


def test_a_hand_edited_table_makes_check_fail(tmp_path):
    root = copy_benchmarks(tmp_path)
    page = root / "docs/benchmarks/sth.md"
    page.write_text(page.read_text().replace("| 0.500 ± 0.054 |", "| 0.510 ± 0.054 |", 1))
    out = io.StringIO()
    assert tables.run(root, None, check=True, out=out) == 1
    assert "0.510 ± 0.054" in out.getvalue()


def test_blocks_in_paper_readmes_are_rendered_too(tmp_path):
    root = copy_benchmarks(tmp_path)
    readme = root / "configs/lavis/albef/README.md"
    readme.parent.mkdir(parents=True)
    readme.write_text("# ALBEF\n\n<!-- table: albef/headline -->\nstale\n<!-- /table -->\n")
    assert tables.run(root, None, check=True, out=io.StringIO()) == 1
    assert tables.run(root, None, check=False, out=io.StringIO()) == 0
    text = readme.read_text()
    assert "stale" not in text
    assert "| ALBEF ITC (CLS-only dual encoder) | 42,43,44 | 3.7 ± 2.5 |" in text
    assert text.endswith("<!-- /table -->\n")


@pytest.mark.parametrize(
    "block, message",
    [
        ("upsr/no-such-table", "unknown table id 'upsr/no-such-table'"),
        ("nopaper/headline", "no results file docs/benchmarks/results/nopaper.json"),
        ("headline", "is not '<paper>/<table-id>'"),
    ],
)
def test_an_unknown_table_id_is_an_error_naming_the_file_and_the_id(
    tmp_path, capsys, block, message
):
    root = copy_benchmarks(tmp_path)
    page = root / "docs/benchmarks/extra.md"
    page.write_text(f"# Extra\n\n<!-- table: {block} -->\n<!-- /table -->\n")
    assert tables.main(["--check", "--root", str(root)]) == 2
    error = capsys.readouterr().err
    assert "docs/benchmarks/extra.md:3" in error
    assert block in error
    assert message in error


def test_an_unclosed_block_is_an_error_naming_the_file(tmp_path, capsys):
    root = copy_benchmarks(tmp_path)
    (root / "docs/benchmarks/extra.md").write_text("<!-- table: upsr/headline -->\ntext\n")
    assert tables.main(["--root", str(root)]) == 2
    assert "docs/benchmarks/extra.md:1: block 'upsr/headline' is not closed" in (
        capsys.readouterr().err
    )


def test_cells_are_formatted_by_their_column():
    results = tables.Results(REPO_ROOT)
    table = {
        "columns": ["name", {"name": "mean ± std", "format": "{:.4f} ± {:.4f}"}, "n"],
        "rows": [
            ["a", [0.1, 0.02], 3],
            ["b", "-", None],
            ["c", {"value": 1795, "format": "{:,} s"}, 1],
            ["d", 0.5, 2],
        ],
    }
    rows = [tables.row_cells(results, table, row, "test") for row in table["rows"]]
    assert rows == [
        ["a", "0.1000 ± 0.0200", "3"],
        ["b", "-", ""],
        ["c", "1,795 s", "1"],
        ["d", "0.5000", "2"],  # one number in a mean ± std column: the first field
    ]
    assert tables.table_line(rows[1]) == "| b | - | |"
