"""No tracked file points at material a reader of the repository cannot see.

Checked in every tracked markdown, Python, yaml, txt and shell file (this file excepted):
- numbers of the project's own tracker ("issue 12", "issue #12", "(issue 5)"); upstream
  references name their project ("RecBole#2212", "mmaction2#2714", a GitHub issue link, "the
  RecBole issue 2212") and are allowed;
- working notes and their vocabulary: "session", "issue note", "part 1" / "part 2", "review"
  or "reviewer" in the sense of a colleague's review, "other engineers";
- folders outside the repository: "shared/specs", "shared/reviews", "../shared".
And in code (everything but markdown): no pointer into a README section by its name, such as
``see README "Ablations"`` or ``(README, STH efficiency)``; a README section moves or is
renamed without the code knowing. Point at a file, or state the fact itself.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from conftest import REPO_ROOT

SUFFIXES = {".md", ".py", ".yaml", ".yml", ".txt", ".sh"}
THIS_FILE = Path(__file__).resolve().relative_to(REPO_ROOT).as_posix()

UPSTREAM = re.compile(
    r"(?:RecBole|recbole|MMAction2|mmaction2|mmengine|mmcv|MMPretrain|LAVIS|lavis|torch|PyTorch|"
    r"pytorch|transformers|decord|faiss|FAISS|timm|NumPy|numpy|pandas|ray|CLIP|openai|"
    r"open-mmlab|salesforce|RUCAIBox|upstream)\S*\s*$"
)
RULES = {
    "issue number": re.compile(r"\bissues?\s*#?\s*\d+", re.IGNORECASE),
    "tracker wording": re.compile(r"\bissue notes?\b|\bthe issue's\b", re.IGNORECASE),
    "session": re.compile(r"\bsessions?\b", re.IGNORECASE),
    "part 1/2": re.compile(r"\bpart\s*[12]\b", re.IGNORECASE),
    "review": re.compile(
        r"\breviewers?\b|\b(?:independent|code|peer|internal|team|docs|documentation|"
        r"readability)\s+reviews?\b|\breviews?\s+(?:caught|found|flagged|noted|said|asked)\b|"
        r"\b(?:in|after|by)\s+(?:the\s+|a\s+)?review\b",
        re.IGNORECASE,
    ),
    "other engineers": re.compile(r"\b(?:other|another)\s+engineer", re.IGNORECASE),
    "outside folder": re.compile(r"shared/specs|shared/reviews|\.\./shared"),
}
# pytest's own fixture scope is not a working note
ALLOWED = re.compile(r"""scope\s*=\s*["']session["']""")

# "README" followed by a section name: README "STH", (README: Text-video retrieval),
# (README, STH efficiency), README's 'Ablations'; a string split over two lines is joined first
README_SECTION = re.compile(
    r"README(?:'s)?\s*(?:[\"']\s*[rfbuRFBU]*[\"'])?\s*[(:,]?\s*(?:section\s+)?[\"'“‘(]?\s*[A-Z]"
    r"|[\"'“‘][A-Z][^\"'”’\n]*[\"'”’]\s+(?:sub)?section\s+(?:of|in)\s+(?:the\s+)?README"
)


def tracked_files() -> list[str]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout
        names = [name for name in out.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        names = [p.relative_to(REPO_ROOT).as_posix() for p in REPO_ROOT.rglob("*") if p.is_file()]
    return sorted(
        name
        for name in names
        if Path(name).suffix in SUFFIXES and name != THIS_FILE and (REPO_ROOT / name).is_file()
    )


def references(text: str) -> list[tuple[int, str, str]]:
    """(line number, rule, matched text) of every outside reference in ``text``."""
    found = []
    for number, line in enumerate(text.split("\n"), 1):
        line = ALLOWED.sub("", line)
        for rule, pattern in RULES.items():
            for match in pattern.finditer(line):
                if rule == "issue number" and UPSTREAM.search(line[: match.start()]):
                    continue
                found.append((number, rule, match[0]))
    return found


def readme_section_pointers(text: str) -> list[tuple[int, str]]:
    """(line number, matched text) of README section pointers; each line is read together
    with the next one, comment markers and string quotes at the break removed."""
    lines = text.split("\n")
    found = []
    for i, line in enumerate(lines):
        following = lines[i + 1] if i + 1 < len(lines) else ""
        joined = line + " " + re.sub(r"^\s*(?:#+|//|\*)?\s*", "", following)
        for match in README_SECTION.finditer(joined):
            if match.start() < len(line):
                found.append((i + 1, match[0]))
    return found


FILES = tracked_files()
CODE_FILES = [name for name in FILES if not name.endswith(".md")]


def test_files_are_found():
    assert "README.md" in FILES and "plugins/cli.py" in CODE_FILES


@pytest.mark.parametrize("name", FILES)
def test_no_outside_references(name):
    text = (REPO_ROOT / name).read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    found = [
        f"{name}:{n}: {rule} ({match!r}): {lines[n - 1].strip()[:160]}"
        for n, rule, match in references(text)
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize("name", CODE_FILES)
def test_code_does_not_point_into_readme_sections(name):
    text = (REPO_ROOT / name).read_text(encoding="utf-8", errors="replace")
    lines = text.split("\n")
    found = [
        f"{name}:{n}: points into a README section: {lines[n - 1].strip()}"
        for n, _ in readme_section_pointers(text)
    ]
    assert not found, "\n".join(found)


@pytest.mark.parametrize(
    "text",
    [
        "The model (issue 5) is not built yet.",
        "# see issue #12",
        "measured in this session",
        "the script is in the issue note",
        "against the issue's 90 minutes",
        "part 1's diagnostics",
        "an independent review caught it",
        "the reviewer asked for it",
        "the other core was another engineer's",
        "beside other engineers' jobs",
        "see shared/specs/sth.md",
        "(../shared/specs/stack.md)",
    ],
)
def test_the_check_catches(text):
    assert references(text)


@pytest.mark.parametrize(
    "text",
    [
        "open-mmlab/mmaction2#2714 and RecBole#2212",
        "https://github.com/salesforce/LAVIS/issues/537",
        "the RecBole issue 2212",
        "reviews missing a required key (Amazon review data)",
        "python convert_amazon2018.py --reviews Musical_Instruments.json.gz",
        '@pytest.fixture(scope="session")',
        "a partition of 12 parts",
    ],
)
def test_the_check_allows(text):
    assert not references(text)


@pytest.mark.parametrize(
    "text",
    [
        '# Data: see README "STH" (videos under data/sthv2/videos)',
        "# the transformer for hundreds of steps (README: Text-video retrieval, measured)",
        "time of the temporal conv + fused add (README, STH efficiency): the fresh conv",
        'Protocol (README "BagFormer speed protocol"):',
        '# after configs/recbole/upsr_ml100k_cpu.yaml; README\n# "Where UPSR\'s gap comes from"',
        '"One seed: the 3-seed ablation is in README "\n            "(TeachCLIP, the student)."',
        "see the 'Ablations' section of the README",
    ],
)
def test_the_readme_check_catches(text):
    assert readme_section_pointers(text)


@pytest.mark.parametrize(
    "text",
    [
        "# Hyper-parameters: official (README: noclip_lr 3e-5, dropout 0.3)",
        "xpool_msrvtt-9k.yaml's (X-Pool's README recipe)",
        'readme = "README.md"',
        "the paper's README. A plugin that sets",
        "(measured: docs/benchmarks/upsr.md)",
    ],
)
def test_the_readme_check_allows(text):
    assert not readme_section_pointers(text)
