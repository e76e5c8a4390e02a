"""Every link and every repository path in the tracked markdown resolves.

Checked in each tracked ``*.md`` file:
- relative links ``[text](path)``, ``[text](path#anchor)``, ``[text](#anchor)`` and reference
  definitions ``[label]: path``: the file or folder exists, relative to the markdown file;
  an anchor into a markdown file names one of its headings (GitHub's heading ids);
- paths written in backticks (inline code and fenced code blocks) that start with
  ``configs/``, ``tools/`` or ``docs/``: they exist, relative to the repository root.
  ``{a,b}`` is expanded and a glob must match at least one file; a path with a placeholder
  (``<run>``, ``$VAR``, ``...``) is not checked, nor is a path that the text says belongs to
  a host (``MMAction2's `tools/data/sthv2/```, ``the wheel's `tools/train.py```).
"""

from __future__ import annotations

import re
import subprocess
from functools import cache
from pathlib import Path
from urllib.parse import unquote

import pytest
from conftest import REPO_ROOT

FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s+<?(\S+?)>?(?:\s+\"[^\"]*\")?\s*$")
CODE_SPAN = re.compile(r"(`+)(.+?)\1")
REPO_PATH = re.compile(
    r"(?<![\w./-])(?:\./)?((?:configs|tools|docs)/(?:\{[^}\s]*\}|[^\s`'\"()\[\]<>|;,{}])*)"
)
HOST_OWNED = re.compile(
    r"(?:MMAction2|mmaction2|MMPretrain|mmengine|LAVIS|RecBole|upstream|host|wheel)(?:'s)?\s*$"
)
PLACEHOLDER = re.compile(r"<|>|\$|\.\.\.")
EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:|//)", re.IGNORECASE)


def tracked_markdown() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "*.md"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return sorted(str(p.relative_to(REPO_ROOT)) for p in REPO_ROOT.rglob("*.md"))
    return sorted(name for name in out.split("\0") if name)


def split_fences(text: str) -> tuple[list[tuple[int, str]], list[tuple[int, str]]]:
    """(line number, line) pairs outside and inside fenced code blocks."""
    prose, code = [], []
    fence = None
    for number, line in enumerate(text.split("\n"), 1):
        marker = FENCE.match(line)
        if marker and (fence is None or marker[1].startswith(fence)):
            fence = marker[1] if fence is None else None
            continue
        (code if fence else prose).append((number, line))
    return prose, code


def slug(heading: str) -> str:
    """GitHub's id for a heading: links reduced to their text, lower case, punctuation other
    than '-' and '_' removed, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    """The heading ids of a markdown file (repeated headings get -1, -2, ...), plus explicit
    ``id``/``name`` attributes."""
    prose, _ = split_fences(path.read_text(encoding="utf-8"))
    ids: set[str] = set()
    seen: dict[str, int] = {}
    for _, line in prose:
        heading = re.match(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if heading:
            base = slug(heading[1])
            count = seen.get(base, 0)
            seen[base] = count + 1
            ids.add(base if count == 0 else f"{base}-{count}")
        ids.update(re.findall(r"""(?:id|name)=["']([^"']+)["']""", line))
    return frozenset(ids)


def check_link(source: Path, target: str) -> str | None:
    """Why ``target`` (a link in ``source``) does not resolve, or None."""
    if EXTERNAL.match(target):
        return None
    target, _, anchor = unquote(target).partition("#")
    target = target.split("?")[0]
    path = (source.parent / target).resolve() if target else source
    if not path.exists():
        return "no such file"
    if not path.is_relative_to(REPO_ROOT):
        return "outside the repository"
    if anchor and path.suffix == ".md" and anchor.lower() not in anchors(path):
        return f"no heading with id #{anchor} in {path.relative_to(REPO_ROOT)}"
    return None


def expand_braces(path: str) -> list[str]:
    match = re.search(r"\{([^{}]*)\}", path)
    if not match:
        return [path]
    head, tail = path[: match.start()], path[match.end() :]
    return [p for option in match[1].split(",") for p in expand_braces(head + option + tail)]


def check_repo_path(path: str) -> str | None:
    """Why ``path`` (a repository path written in backticks) does not resolve, or None."""
    path = path.rstrip(".:")
    for candidate in expand_braces(path):
        if any(ch in candidate for ch in "*?["):
            if not any(REPO_ROOT.glob(candidate)):
                return f"{candidate}: no file matches"
        elif not (REPO_ROOT / candidate).exists():
            return f"{candidate}: no such file or folder"
    return None


def code_paths(text: str) -> list[str]:
    return [
        m[1]
        for m in REPO_PATH.finditer(text)
        if not PLACEHOLDER.search(text[m.start() :].split()[0])
    ]


def problems(name: str) -> list[str]:
    source = REPO_ROOT / name
    text = source.read_text(encoding="utf-8")
    prose, code = split_fences(text)
    found = []
    previous = ""
    for number, line in prose:
        targets = [m[1] for m in LINK.finditer(CODE_SPAN.sub("", line))]
        reference = REFERENCE.match(line)
        if reference:
            targets.append(reference[1])
        for target in targets:
            why = check_link(source, target)
            if why:
                found.append(f"{name}:{number}: link ({target}): {why}")
        for span in CODE_SPAN.finditer(line):
            if HOST_OWNED.search(f"{previous} {line[: span.start()]}"):
                continue
            for path in code_paths(span[2]):
                why = check_repo_path(path)
                if why:
                    found.append(f"{name}:{number}: `{path}`: {why}")
        previous = line
    for number, line in code:
        for path in code_paths(line):
            why = check_repo_path(path)
            if why:
                found.append(f"{name}:{number}: `{path}` (code block): {why}")
    return found


MARKDOWN = tracked_markdown()


def test_markdown_files_are_found():
    assert "README.md" in MARKDOWN


@pytest.mark.parametrize("name", MARKDOWN)
def test_links_and_repository_paths_resolve(name):
    found = problems(name)
    assert not found, "\n".join(found)


def test_the_checker_catches_broken_links_and_paths():
    """The checker itself: a page with one good and one broken item of every kind."""
    page = REPO_ROOT / "docs" / "benchmarks" / "upsr.md"
    assert check_link(page, "results/upsr.json") is None
    assert check_link(page, "results/nothing.json") == "no such file"
    assert check_link(page, "#ablations") is not None
    assert check_link(page, "#generative-top-k-against-full-sort-as-the-catalogue-grows") is None
    assert check_link(page, "sth.md#cpu-efficiency-resnet-50-8x224x224-clips") is None
    assert check_link(page, "https://arxiv.org/abs/2310.13540") is None
    assert check_repo_path("tools/misc/benchmark_tables.py") is None
    assert check_repo_path("configs/lavis/clip4clip/embedded_{meanP,seqTransf}.yaml") is None
    assert check_repo_path("configs/lavis/clip4clip/embedded_{meanP,nope}.yaml") is not None
    assert check_repo_path("configs/lavis/teachclip/teachclip_*.yaml") is None
    assert check_repo_path("tools/no_such_tool.py") is not None
    assert code_paths("python tools/lavis_train.py --cfg-path configs/x.yaml") == [
        "tools/lavis_train.py",
        "configs/x.yaml",
    ]
    assert code_paths("<mmaction>/.mim/tools/train.py CONFIG") == []
    assert code_paths("configs/<paper>/README.md") == []
