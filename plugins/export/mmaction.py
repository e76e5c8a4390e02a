"""STH -> MMAction2 1.2.0, by either of MMAction2's two routes.

``route='project'``: the community project ``projects/sth/``, taken under lighter rules
than the core package (MMAction2's example project: ``README.md`` with a three-milestone
checklist, ``configs/`` inheriting MMAction2's recipes through ``mmaction::`` and importing
the project's ``models`` package, ``models/`` registering into ``mmaction.registry.MODELS``).

``route='core'``: the operator in ``mmaction/models/common/`` (``sth_conv.py`` with its
layout views and plain-operator arrangements beside it), the backbones in
``mmaction/models/backbones/``, the 2D-checkpoint conversion in
``mmaction/models/utils/sth_utils.py``, each registered in its folder's ``__init__.py``;
``configs/recognition/sth/`` with the algorithm README (``<!-- [ALGORITHM] -->``) and
``metafile.yml``, the ``model-index.yml`` line, and tests under ``tests/models/`` in
MMAction2's pattern. Host files the source tree lacks (an sdist has no ``tests/`` and no
``model-index.yml`` at its root) are named in :attr:`ExportTree.skipped` with the edit.

Both routes export the readable operator: ``sth_conv.py`` and ``sth_fast_paths.py`` call
public torch operators only; the oneDNN inference kernels (``mmaction_ext/models/
sth_onednn.py``, private torch ops) stay out, and so do the import that reaches them where
they exist, its branch and the docstrings' references to them (``optional_modules``).
Every Python file is brought to MMAction2's pre-commit style by the pinned tools
(:func:`mmaction_style`: isort, yapf, the double-quote string fixer, docformatter, the
whitespace fixers; mdformat for the READMEs), run from the export cache
(``plugins/export/sources.py``).
"""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import tempfile
import textwrap
import tokenize
from pathlib import Path

import yaml

from plugins.export.core import (
    ExportRefused,
    ExportToolFailed,
    ExportTree,
    PythonRules,
    insert_after_last,
    rewrite_python,
    text_mentions,
    with_header,
)
from plugins.export.sources import formatter_env
from plugins.paths import REPO_ROOT

PROJECT = "projects/sth"
ROUTES = ("project", "core")
PAPER_LINK = "https://arxiv.org/abs/2003.08042"
PAPER_TITLE = "STH: Spatio-Temporal Hybrid Convolution for Efficient Action Recognition"
PROVENANCE = "written for plugzoo from the paper arXiv 2003.08042; not derived from released code"
# MMAction2's copyright line (its check-copyright hook) and where the code comes from
PROVENANCE_LINES = (
    PROVENANCE[: PROVENANCE.index(";") + 1],
    PROVENANCE[PROVENANCE.index(";") + 2 :],
)
HEADER = (
    "# Copyright (c) OpenMMLab. All rights reserved.",
    *(f"# {line}" for line in PROVENANCE_LINES),
)
# the exported operator's modules; sth_onednn.py (private torch ops) is not among them
OPERATOR = ("sth_conv", "sth_layout", "sth_fast_paths")
BACKBONES = ("resnet_sth", "mobilenet_v2_sth")

# plugzoo file -> project file; the package keeps its layout, so relative imports stay
SOURCES = {f"mmaction_ext/models/{name}.py": f"{PROJECT}/models/{name}.py" for name in OPERATOR} | {
    f"mmaction_ext/models/backbones/{name}.py": f"{PROJECT}/models/backbones/{name}.py"
    for name in ("__init__", "convert_2d", *BACKBONES)
}
# plugzoo file -> MMAction2 file (core route); a relative import is mapped through these
CORE_SOURCES = {
    **{f"mmaction_ext/models/{name}.py": f"mmaction/models/common/{name}.py" for name in OPERATOR},
    **{
        f"mmaction_ext/models/backbones/{name}.py": f"mmaction/models/backbones/{name}.py"
        for name in BACKBONES
    },
    "mmaction_ext/models/backbones/convert_2d.py": "mmaction/models/utils/sth_utils.py",
}
# plugzoo configs -> exported configs; the others inherit plugzoo's own dataset bases
CONFIGS = (
    "sth_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py",
    "sth_imagenet-pretrained-r50_8xb16-1x1x16-50e_sthv2-rgb.py",
    "sth_imagenet-pretrained-mobilenetv2_8xb16-1x1x8-50e_sthv2-rgb.py",
)
CORE_CONFIGS = "configs/recognition/sth"
# plugzoo's local 2D checkpoints -> the model-zoo names MMAction2's recipes use
PRETRAINED = {
    "checkpoints/torchvision/resnet50-0676ba61.pth": "torchvision://resnet50",
    "checkpoints/mmpretrain/mobilenet_v2_batch256_imagenet.pth": "mmcls://mobilenet_v2",
}
# MMAction2's lint settings (.pre-commit-config.yaml and the lint workflow at v1.2.0)
CODESPELL_ARGS = ("--skip", "*.ipynb", "-L", "ECT,Gool,tread,gool,mot")
INTERROGATE_ARGS = (
    "-v",
    "--ignore-init-method",
    "--ignore-module",
    "--ignore-nested-functions",
    "--ignore-regex",
    "__repr__",
    "--fail-under",
    "80",
)
DOCFORMATTER_ARGS = ("--in-place", "--wrap-descriptions", "79")
MDFORMAT_ARGS = ("--number", "--table-width", "200")
# check-copyright's folders, and the words it accepts on a line as a header
COPYRIGHT_FOLDERS = ("mmaction", "tests", "demo", "tools")

# imported by sth_fast_paths only where it exists; the exporter removes that import
OPTIONAL = frozenset({"mmaction_ext.models.sth_onednn"})

RULES = PythonRules(
    module_map={},
    text_map={"mmaction_ext/models/": f"{PROJECT}/models/"},
    header=HEADER,
    relative_imports=True,
    optional_modules=OPTIONAL,
)


def _module(path: str) -> str:
    return path[: -len(".py")].replace("/", ".")


CORE_RULES = PythonRules(
    module_map={
        **{_module(source): _module(target) for source, target in CORE_SOURCES.items()},
        # `from . import sth_fast_paths`: the operator's package
        "mmaction_ext.models": "mmaction.models.common",
    },
    text_map={
        source[: -len(".py")]: target[: -len(".py")] for source, target in CORE_SOURCES.items()
    },
    header=HEADER,
    optional_modules=OPTIONAL,
)

MODELS_INIT = """from .backbones import MobileNetV2STH, ResNetSTH
from .sth_conv import STHConv, STHDepthwiseConv

__all__ = ['MobileNetV2STH', 'ResNetSTH', 'STHConv', 'STHDepthwiseConv']
"""
# host __init__.py -> (module, names) the core route registers there
CORE_INITS = {
    "mmaction/models/common/__init__.py": {".sth_conv": ["STHConv", "STHDepthwiseConv"]},
    "mmaction/models/backbones/__init__.py": {
        ".mobilenet_v2_sth": ["MobileNetV2STH"],
        ".resnet_sth": ["ResNetSTH"],
    },
}


def single_quotes(text: str) -> str:
    """Double-quoted strings as single-quoted where no quote inside changes meaning (what
    MMAction2's ``double-quote-string-fixer`` hook does); docstrings stay triple-quoted."""
    out, lines = [], text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    position = 0
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type != tokenize.STRING:
            continue
        body = token.string.lstrip("rRbBuUfF")
        prefix = token.string[: len(token.string) - len(body)]
        if body.startswith('"""') or not body.startswith('"') or "'" in body:
            continue
        start = starts[token.start[0] - 1] + token.start[1]
        out.append(text[position:start] + prefix + "'" + body[1:-1] + "'")
        position = start + len(token.string)
    out.append(text[position:])
    return "".join(out)


WIDTH = 79
# a docstring line that starts an item of its own: a section header, a bullet, an argument
_SECTION = re.compile(
    r"^\s*(Args|Arguments|Returns|Raises|Yields|Attributes|Notes?|Examples?|Warnings?):\s*$"
)
_ITEM = re.compile(r"^\s*(- |\* |\d+\. |[\w*]+(, [\w*]+)*( \([^)]*\))?: )")


def _wrap_item(lines: list[str], width: int) -> list[str]:
    """One docstring or comment item (a first line and its continuation lines) re-flowed to
    ``width``: the first line keeps its indent (and prefix), the others the continuation
    indent (the second line's, else a hanging indent for bullets and arguments)."""
    first = lines[0]
    indent = first[: len(first) - len(first.lstrip())]
    if len(lines) > 1:
        follow = lines[1][: len(lines[1]) - len(lines[1].lstrip())]
    elif _ITEM.match(first):
        follow = indent + ("  " if first.lstrip()[:2] in ("- ", "* ") else "    ")
    else:
        follow = indent
    words = " ".join(line.strip() for line in lines).split()
    return textwrap.wrap(
        " ".join(words),
        width,
        initial_indent=indent,
        subsequent_indent=follow,
        break_long_words=False,
        break_on_hyphens=False,
    )


def _wrap_docstring(lines: list[str], width: int) -> list[str]:
    """The lines of one triple-quoted string with every item that holds a line over
    ``width`` re-flowed; literal blocks (after ``::``, doctests) are kept."""
    out, item, literal = [], [], None

    def flush():
        if item:
            out.extend(_wrap_item(item, width) if any(len(line) > width for line in item) else item)
            item.clear()

    for number, line in enumerate(lines):
        stripped = line.strip()
        current = len(line) - len(line.lstrip())
        if literal is not None:
            if stripped and current <= literal:
                literal = None
            else:
                out.append(line)
                continue
        closing = number and stripped.startswith(('"""', "'''"))
        if not stripped or closing or stripped.startswith(">>>") or _SECTION.match(line):
            flush()
            out.append(line)
            continue
        # an item runs on while lines keep at least its first line's indent and start no
        # bullet or argument of their own
        starts = _ITEM.match(line) or (item and current < len(item[0]) - len(item[0].lstrip()))
        if starts and item:
            flush()
        item.append(line)
        if stripped.endswith("::"):
            flush()
            literal = current
    flush()
    return out


def _wrap_comments(lines: list[str], width: int) -> list[str]:
    """Runs of full-line comments with a line over ``width`` re-flowed, each run a
    paragraph at its own indent."""
    out, run = [], []

    def flush():
        if run and any(len(line) > width for line in run):
            indent = run[0][: len(run[0]) - len(run[0].lstrip())]
            text = " ".join(line.strip()[1:].strip() for line in run)
            out.extend(
                textwrap.wrap(
                    text,
                    width,
                    initial_indent=indent + "# ",
                    subsequent_indent=indent + "# ",
                    break_long_words=False,
                    break_on_hyphens=False,
                )
            )
        else:
            out.extend(run)
        run.clear()

    for line in lines:
        if line.lstrip().startswith("#") and not line.lstrip().startswith("#!"):
            if run and (len(line) - len(line.lstrip())) != (len(run[0]) - len(run[0].lstrip())):
                flush()
            run.append(line)
        else:
            flush()
            out.append(line)
    flush()
    return out


def _split_string(token: tokenize.TokenInfo, width: int, nested: bool) -> str | None:
    """The string literal ``token`` as two implicitly concatenated literals, the first
    ending at the last space or slash that fits ``width`` (never inside an f-string's
    braces), the
    second on the next line at the same column; parenthesised where no bracket encloses
    it. None where no space fits."""
    text = token.string
    body = text.lstrip("rRbBuUfF")
    prefix, quote = text[: len(text) - len(body)], body[0]
    body = body[1:-1]
    room = width - token.start[1] - len(prefix) - 2 - (0 if nested else 1)
    depth, cut = 0, None
    for index, char in enumerate(body):
        if "f" in prefix.lower() and char in "{}":
            depth += 1 if char == "{" else -1
        elif char in " /" and depth == 0 and index < room and body[index - 1 : index] != "\\":
            cut = index + 1
    if cut is None or cut >= len(body):
        return None
    column = token.start[1] + (0 if nested else 1)
    first = f"{prefix}{quote}{body[:cut]}{quote}"
    second = f"{prefix}{quote}{body[cut:]}{quote}"
    joined = f"{first}\n{' ' * column}{second}"
    return joined if nested else f"({joined})"


def _fit_one_line(text: str, width: int) -> str | None:
    """``text`` with the first over-long line of code that a string split or a moved
    trailing comment can shorten, shortened; None when there is none."""
    lines = text.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    depth = 0
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.OP and token.string in "([{":
            depth += 1
        elif token.type == tokenize.OP and token.string in ")]}":
            depth -= 1
        row = token.start[0]
        if row > len(lines) or len(lines[row - 1].rstrip("\n")) <= width:
            continue
        line = lines[row - 1]
        if token.type == tokenize.COMMENT and line[: token.start[1]].strip():
            indent = line[: len(line) - len(line.lstrip())]
            code = line[: token.start[1]].rstrip() + "\n"
            return (
                "".join(lines[: row - 1])
                + indent
                + token.string
                + "\n"
                + code
                + "".join(lines[row:])
            )
        if (
            token.type == tokenize.STRING
            and token.start[0] == token.end[0]
            and not token.string.lstrip("rRbBuUfF").startswith(('"""', "'''"))
        ):
            split = _split_string(token, width, nested=depth > 0)
            if split is not None:
                start = starts[row - 1] + token.start[1]
                return text[:start] + split + text[start + len(token.string) :]
    return None


_STATEMENT = re.compile(r"^(\s*)(return |(?:if|elif|while) |[\w.]+(?:, [\w.]+)* = )(.*?)(:?)\n$")


def _parenthesise(text: str, width: int) -> str | None:
    """``text`` with the first over-long one-line ``return``, ``if``/``elif``/``while`` or
    assignment statement's expression in parentheses, where yapf may then break it; the
    syntax tree stays the same. None when there is none."""
    lines = text.splitlines(keepends=True)
    tree = ast.dump(ast.parse(text))
    for index, line in enumerate(lines):
        match = _STATEMENT.match(line)
        if len(line.rstrip("\n")) <= width or not match:
            continue
        indent, head, expression, colon = match.groups()
        if expression.startswith("(") and expression.endswith(")"):
            continue
        candidate = f"{indent}{head}({expression}){colon}\n"
        changed = "".join(lines[:index]) + candidate + "".join(lines[index + 1 :])
        try:
            if ast.dump(ast.parse(changed)) == tree:
                return changed
        except SyntaxError:  # a line inside brackets or a longer statement
            continue
    return None


def fit_columns(text: str, width: int = WIDTH) -> str:
    """Python ``text`` with the lines yapf cannot shorten brought within ``width`` columns:
    docstring items and comment runs re-flowed, long string literals split into
    implicitly concatenated parts, trailing comments moved above their line. Lines that
    fit are left alone; a line with no space to break at stays long."""
    lines = text.splitlines()
    ranges = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        body = token.string.lstrip("rRbBuUfF")
        if token.type != tokenize.STRING or not body.startswith(('"""', "'''")):
            continue
        if not lines[token.start[0] - 1][: token.start[1]].strip():  # a statement
            ranges.append((token.start[0], token.end[0]))
    for first, last in reversed(ranges):
        lines[first - 1 : last] = _wrap_docstring(lines[first - 1 : last], width)
    text = "\n".join(_wrap_comments(lines, width)) + "\n"
    for _ in range(200):  # one shortened line per pass; a file has far fewer long lines
        shorter = _fit_one_line(text, width) or _parenthesise(text, width)
        if shorter is None:
            return text
        text = shorter
    return text


def _tool(name: str, module: str, *args, cwd: Path) -> subprocess.CompletedProcess:
    """``python -m module args`` with the pinned tool ``name`` of the export cache.

    Raises:
        ExportToolFailed: the tool is not in the export cache.
    """
    env = formatter_env(name)
    if env is None:
        raise ExportToolFailed(
            f"{name} (requirements/export.txt) is not installed: run "
            "`python -m plugins.export.sources` (tools/setup_env.sh does) and export again"
        )
    command = [sys.executable, "-m", module, *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)


def _fixers(root: Path, python: list[str], host_src: Path) -> None:
    """MMAction2's pre-commit fixers over the files ``python`` under ``root``, in the
    hooks' order. Each may exit 1 for "changed files"; a crash is an error."""
    settings = str(Path(host_src) / "setup.cfg")
    steps = [
        ("isort", "isort", "--settings-path", settings, *python),
        ("yapf", "yapf", "--in-place", "--style", settings, *python),
        ("pre-commit-hooks", "pre_commit_hooks.trailing_whitespace_fixer", *python),
        ("pre-commit-hooks", "pre_commit_hooks.end_of_file_fixer", *python),
        ("pre-commit-hooks", "pre_commit_hooks.string_fixer", *python),
        ("docformatter", "docformatter", *DOCFORMATTER_ARGS, *python),
    ]
    for name, module, *args in steps:
        done = _tool(name, module, *args, cwd=root)
        # the pre-commit-hooks fixers exit 1 when they changed a file
        changed = 1 if name == "pre-commit-hooks" else 0
        if done.returncode not in (0, changed) or "Traceback" in done.stderr:
            raise ExportToolFailed(
                f"{module} failed on the exported files: {done.stdout[-1000:]}{done.stderr[-2000:]}"
            )


def mmaction_style(files: dict[str, str], host_src: Path) -> dict[str, str]:
    """``files`` through MMAction2's pre-commit fixers with the pinned tools: the ``.py``
    ones with the host's ``setup.cfg``, then :func:`fit_columns` on what yapf cannot
    shorten and the fixers again, repeated until nothing changes (yapf moves code, so a
    line fitted before may need fitting again; four rounds at most); the ``.md`` ones
    through mdformat.

    Raises:
        ExportToolFailed: a tool is missing from the export cache or fails, or the fixers do
            not settle.
    """
    python = sorted(k for k in files if k.endswith(".py"))
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for relative in python:
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(single_quotes(files[relative]), encoding="utf-8")
        _fixers(root, python, host_src)  # first, so that only what yapf leaves is fitted
        before = None
        for _ in range(4):
            for relative in python:
                path = root / relative
                path.write_text(fit_columns(path.read_text(encoding="utf-8")), encoding="utf-8")
            _fixers(root, python, host_src)
            after = {k: (root / k).read_text(encoding="utf-8") for k in python}
            if after == before:
                return {**files, **after, **_markdown_style(files, root)}
            before = after
    raise ExportToolFailed("MMAction2's fixers did not settle on the exported files in 4 rounds")


def _markdown_style(files: dict[str, str], root: Path) -> dict[str, str]:
    """The ``.md`` files of ``files`` through MMAction2's mdformat hook (with its plugins:
    tables aligned, lists numbered), written under ``root`` first."""
    markdown = sorted(k for k in files if k.endswith(".md"))
    if not markdown:
        return {}
    for relative in markdown:
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(files[relative], encoding="utf-8")
    done = _tool("mdformat", "mdformat", *MDFORMAT_ARGS, *markdown, cwd=root)
    if done.returncode:
        raise ExportToolFailed(f"mdformat failed on the exported files: {done.stderr[-2000:]}")
    return {k: (root / k).read_text(encoding="utf-8") for k in markdown}


def style_problems(root: Path, files: list[str], host_src: Path) -> list[str]:
    """What MMAction2's linters report on ``files`` (paths under ``root``): flake8 with
    the host's ``setup.cfg``, codespell with its pre-commit arguments, mdformat's check on
    the ``.md`` files, check-copyright's
    rule (a line naming Copyright or License in every ``.py`` under its folders), and
    interrogate's docstring coverage (>= 80%) over the ``.py`` files under ``mmaction/``
    or ``models/``. An empty list: all pass."""
    problems = []
    python = [f for f in files if f.endswith(".py")]
    settings = str(Path(host_src) / "setup.cfg")
    done = _tool("flake8", "flake8", "--config", settings, *python, cwd=root)
    if done.returncode:
        problems.append(f"flake8:\n{done.stdout}{done.stderr}")
    done = _tool("codespell", "codespell_lib", *CODESPELL_ARGS, *files, cwd=root)
    if done.returncode:
        problems.append(f"codespell:\n{done.stdout}{done.stderr}")
    markdown = [f for f in files if f.endswith(".md")]
    if markdown:
        done = _tool("mdformat", "mdformat", "--check", *MDFORMAT_ARGS, *markdown, cwd=root)
        if done.returncode:
            problems.append(f"mdformat:\n{done.stdout}{done.stderr}")
    for relative in python:
        if relative.split("/")[0] in COPYRIGHT_FOLDERS:
            lines = (root / relative).read_text(encoding="utf-8").splitlines()
            if not any("Copyright" in line or "License" in line for line in lines):
                problems.append(f"check-copyright: {relative} has no copyright line")
    covered = [
        f
        for f in python
        if f.startswith(("mmaction/", f"{PROJECT}/models/")) and not f.endswith("__init__.py")
    ]
    if covered:
        done = _tool("interrogate", "interrogate", *INTERROGATE_ARGS, *covered, cwd=root)
        if done.returncode:
            problems.append(f"interrogate:\n{done.stdout[-3000:]}{done.stderr[-1000:]}")
    return problems


def _mmaction_recipe(path: Path) -> str:
    """The first ``mmaction::`` base reached through ``path``'s ``_base_`` chain."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets
        ):
            bases = ast.literal_eval(node.value)
            for base in [bases] if isinstance(bases, str) else bases:
                if base.startswith("mmaction::"):
                    return base
                found = _mmaction_recipe(path.parent / base)
                if found:
                    return found
    return ""


def _dict_source(value) -> str:
    if isinstance(value, dict):
        return "dict(" + ", ".join(f"{k}={_dict_source(v)}" for k, v in value.items()) + ")"
    return repr(value)


def _config_model(name: str, repo: Path) -> tuple[str, dict]:
    """``(recipe, model)`` of plugzoo's config ``name``: the ``mmaction::`` recipe it builds
    on, and the model keys that differ from it (the backbone, with its 2D weights by
    model-zoo name, and the head keys the recipe does not have)."""
    import mmaction
    from mmengine.config import Config

    path = repo / "configs/mmaction/sth" / name
    recipe = _mmaction_recipe(path)
    if not recipe:
        raise ValueError(f"{path}: no mmaction:: recipe in its _base_ chain")
    config = Config.fromfile(str(path))
    recipe_file = Path(mmaction.__file__).parent / ".mim/configs" / recipe.split("::", 1)[1]
    base = Config.fromfile(str(recipe_file))
    backbone = config.model.backbone.to_dict()
    local = backbone.get("pretrained")
    if local not in PRETRAINED:
        raise ValueError(f"{path}: backbone.pretrained {local!r} has no model-zoo name")
    backbone = {"_delete_": True, **backbone, "pretrained": PRETRAINED[local]}
    head = {
        key: value
        for key, value in config.model.cls_head.to_dict().items()
        if base.model.cls_head.get(key) != value
    }
    return recipe, {"backbone": backbone, **({"cls_head": head} if head else {})}


def project_config(name: str, repo: Path = REPO_ROOT) -> str:
    """A project config: MMAction2's recipe as ``_base_``, the project's ``models`` imported,
    the backbone (and the head keys that differ from the recipe's) of plugzoo's config."""
    recipe, model = _config_model(name, repo)
    text = (
        f"_base_ = {recipe!r}\n\n"
        "custom_imports = dict(imports='models')\n\n"
        f"model = {_dict_source(model)}\n"
    )
    return with_header(text, HEADER)


def core_config(name: str, repo: Path = REPO_ROOT) -> str:
    """A core config: the recipe as a relative ``_base_`` (as MMAction2's own configs
    inherit one another), the model keys of :func:`project_config`, no imports (the
    backbone is registered by ``mmaction.models``)."""
    recipe, model = _config_model(name, repo)
    family, _, file = recipe.split("::", 1)[1].partition("/")[2].partition("/")
    text = f"_base_ = [{f'../{family}/{file}'!r}]\n\nmodel = {_dict_source(model)}\n"
    return with_header(text, HEADER)


def project_readme(configs: list[str]) -> str:
    """The project README in the layout of MMAction2's example project, the checklist
    ticked for what is done."""
    first = f"configs/{configs[0]}"
    lines = [
        "# STH: Spatio-Temporal Hybrid Convolution",
        "",
        f"> [{PAPER_TITLE}]({PAPER_LINK})",
        "",
        "<!-- [ALGORITHM] -->",
        "",
        "## Abstract",
        "",
        "STH splits a 2D convolution's input channels into groups: some convolve over space, "
        "others over time, inside one convolution, so a 2D backbone models motion at the "
        "cost of a 2D network. This project provides `STHConv` (and a depthwise form), "
        "`ResNetSTH` and `MobileNetV2STH`, registered in `mmaction.registry.MODELS`, and "
        "configs that swap them into MMAction2's TSM recipes for Something-Something V2.",
        "",
        "The paper's code and full text were not available: this is a reconstruction from "
        "its abstract, and every choice the abstract leaves open is a backbone option "
        "(`num_groups`, `temporal_groups`, `interleave`, `temporal_kernel`, "
        f"`temporal_init`). Provenance: {PROVENANCE}.",
        "",
        "`models/sth_conv.py` holds the operator as two plain convolutions; "
        "`models/sth_fast_paths.py` adds the `'masked'` arrangement (one dense convolution "
        "with a masked weight) in public torch operators only. The oneDNN inference kernels "
        "of the original implementation call private torch ops and are left out; the "
        "outputs are the same without them.",
        "",
        "## Usage",
        "",
        "### Setup Environment",
        "",
        "Install MMAction2 1.2.0 (see the installation guide), then run every command from "
        "this folder, with it on the Python path:",
        "",
        "```shell",
        "export PYTHONPATH=`pwd`:$PYTHONPATH",
        "```",
        "",
        "### Data Preparation",
        "",
        "Prepare Something-Something V2 as in `tools/data/sthv2/README.md`; the configs read "
        "the recipe's `data/sthv2` layout.",
        "",
        "### Training commands",
        "",
        "```shell",
        f"mim train mmaction {first}",
        f"mim train mmaction {first} --launcher pytorch --gpus 8",
        "```",
        "",
        "### Testing commands",
        "",
        "```shell",
        f"mim test mmaction {first} --checkpoint $CHECKPOINT",
        "```",
        "",
        "## Configs",
        "",
        *[f"- [`configs/{name}`](configs/{name})" for name in configs],
        "",
        "## Results",
        "",
        "No results yet: the paper released no code or checkpoints, and these configs have not "
        "been trained on Something-Something V2.",
        "",
        "## Citation",
        "",
        *_citation("bibtex"),
        "",
        "## Checklist",
        "",
        "- [ ] Milestone 1: PR-ready, and acceptable to be one of the `projects/`.",
        "  - [x] Finish the code",
        "  - [x] Basic docstrings & proper citation",
        "  - [ ] Converted checkpoint and results (Only for reproduction): none released",
        "- [ ] Milestone 2: Indicates a successful model implementation.",
        "  - [ ] Training results",
        "- [ ] Milestone 3: Good to be a part of our core package!",
        "  - [ ] Unit tests",
        "  - [x] Code style",
        "  - [ ] `metafile.yml` and `README.md`",
    ]
    return "\n".join(lines) + "\n"


def _paper_abstract(repo: Path) -> str:
    """The paper's abstract as plugzoo's STH README quotes it (the paragraph under
    ``<!-- [ABSTRACT] -->``), one line."""
    path = repo / "configs/mmaction/sth/README.md"
    text = path.read_text(encoding="utf-8")
    marker = "<!-- [ABSTRACT] -->"
    if marker not in text:
        raise ValueError(f"{path}: no {marker} paragraph to take the abstract from")
    paragraph = text.split(marker, 1)[1].strip().split("\n\n", 1)[0]
    return " ".join(paragraph.split())


def _citation(fence: str) -> list[str]:
    """The paper's BibTeX entry as README lines, in a code block of language ``fence``
    (each README keeps the spelling it was written with)."""
    return [
        f"```{fence}",
        "@article{li2020sth,",
        "  title   = {{STH}: Spatio-Temporal Hybrid Convolution for Efficient Action Recognition},",
        "  author  = {Li, Xu and Wang, Jingwen and Ma, Lin and Zhang, Kaihao and Lian, "
        "Fengzong and Kang, Zhanhui and Wang, Jinjun},",
        "  journal = {arXiv preprint arXiv:2003.08042},",
        "  year    = {2020}",
        "}",
        "```",
    ]


def core_readme(configs: list[str], repo: Path = REPO_ROOT) -> str:
    """``configs/recognition/sth/README.md`` in the layout of MMAction2's algorithm
    READMEs (``configs/recognition/tsm/README.md``), which ``check-algo-readme`` reads."""
    first = f"{CORE_CONFIGS}/{configs[0]}"
    lines = [
        "# STH",
        "",
        f"[{PAPER_TITLE}]({PAPER_LINK})",
        "",
        "<!-- [ALGORITHM] -->",
        "",
        "## Abstract",
        "",
        "<!-- [ABSTRACT] -->",
        "",
        _paper_abstract(repo),
        "",
        "## Results and Models",
        "",
        "No results and no checkpoints: the paper released neither, and these configs have "
        "not been trained on Something-Something V2. The implementation is a "
        "reconstruction from the paper's abstract: every choice the abstract leaves open is "
        "a backbone option (`num_groups`, `temporal_groups`, `interleave`, "
        f"`temporal_kernel`, `temporal_init`). Provenance: {PROVENANCE}.",
        "",
        "| config | backbone | frames | pretrain |",
        "| :----: | :------: | :----: | :------: |",
        *[
            f"| [config](/{CORE_CONFIGS}/{name}) | "
            f"{'MobileNetV2' if 'mobilenetv2' in name else 'ResNet50'} | "
            f"{name.split('1x1x')[1].split('-')[0]} | ImageNet |"
            for name in configs
        ],
        "",
        "For more details on data preparation, you can refer to "
        "[Something-Something V2](/tools/data/sthv2/README.md).",
        "",
        "## Train",
        "",
        "You can use the following command to train a model.",
        "",
        "```shell",
        "python tools/train.py ${CONFIG_FILE} [optional arguments]",
        "```",
        "",
        "Example: train STH with ResNet-50 on Something-Something V2.",
        "",
        "```shell",
        f"python tools/train.py {first} --seed 0 --deterministic",
        "```",
        "",
        "## Test",
        "",
        "You can use the following command to test a model.",
        "",
        "```shell",
        "python tools/test.py ${CONFIG_FILE} ${CHECKPOINT_FILE} [optional arguments]",
        "```",
        "",
        "## Citation",
        "",
        *_citation("BibTeX"),
    ]
    return "\n".join(lines) + "\n"


def core_metafile(configs: list[str], repo: Path = REPO_ROOT) -> str:
    """``metafile.yml`` in MMAction2's schema, from plugzoo's (its measured FLOPs and
    parameter counts kept): no ``Results``, ``Training Log`` or ``Weights`` (nothing was
    trained on these datasets, nothing released)."""
    path = repo / "configs/mmaction/sth/metafile.yml"
    source = yaml.safe_load(path.read_text(encoding="utf-8"))
    by_name = {model["Name"]: model for model in source.get("Models", [])}
    models = []
    for name in configs:
        stem = name[: -len(".py")]
        if stem not in by_name:
            raise ValueError(f"{path}: Models has no entry named {stem!r}")
        model = dict(by_name[stem], Config=f"{CORE_CONFIGS}/{name}")
        for key in ("Results", "Training Log", "Weights"):
            model.pop(key, None)
        models.append(model)
    collection = {
        "Name": "STH",
        "README": f"{CORE_CONFIGS}/README.md",
        "Paper": {"URL": PAPER_LINK, "Title": PAPER_TITLE},
    }
    body = yaml.safe_dump(
        {"Collections": [collection], "Models": models}, sort_keys=False, width=200
    )
    return (
        "# No released checkpoints: the models carry no Results, Training Log or Weights.\n"
        "# FLOPs and Parameters: mmengine's counts for the network of the config.\n" + body
    )


TEST_STH_CONV = """import pytest
import torch
import torch.nn.functional as F

from mmaction.models.common import STHConv, STHDepthwiseConv


def test_sth_conv():
    \"\"\"Test STHConv: shapes, the masked Conv3d it equals, argument checks.\"\"\"
    with pytest.raises(ValueError):
        # num_groups must divide the channels
        STHConv(6, 8, num_groups=4)
    with pytest.raises(ValueError):
        # the batch must hold whole clips
        STHConv(8, 8, num_segments=4)(torch.rand(6, 8, 8, 8))

    conv = STHConv(16, 16, num_segments=4, temporal_init='random', bias=True)
    x = torch.rand(8, 16, 9, 9)
    output = conv(x)
    assert output.shape == torch.Size([8, 16, 9, 9])

    # [N * T, C, H, W] -> [N, C, T, H, W] through the equivalent Conv3d
    clips = x.view(2, 4, 16, 9, 9).transpose(1, 2)
    expected = F.conv3d(
        clips, conv.dense_equivalent_weight(), conv.spatial.bias, padding=1)
    expected = expected.transpose(1, 2).reshape(8, 16, 9, 9)
    torch.testing.assert_close(output, expected, rtol=1e-4, atol=1e-4)

    output.sum().backward()
    assert conv.spatial.weight.grad is not None
    assert conv.temporal.weight.grad is not None


def test_sth_depthwise_conv():
    \"\"\"Test STHDepthwiseConv.\"\"\"
    with pytest.raises(ValueError):
        # depthwise only
        STHDepthwiseConv(8, 16)

    conv = STHDepthwiseConv(16, stride=2, num_segments=4)
    output = conv(torch.rand(8, 16, 9, 9))
    assert output.shape == torch.Size([8, 16, 5, 5])
"""


def _backbone_test(backbone: str, conv: str, name: str, checks: str) -> str:
    """The unit test file of ``backbone``, in the pattern of MMAction2's backbone tests:
    its imports (with the STH convolution ``conv``), demo inputs of 8 frames at 64 pixels,
    then ``checks``, the rest of the test's body."""
    return (
        f"""import torch

from mmaction.models import {backbone}
from mmaction.models.common import {conv}
from mmaction.testing import generate_backbone_demo_inputs


def test_{name}_backbone():
    \"\"\"Test {name} backbone.\"\"\"
    input_shape = (8, 3, 64, 64)
    imgs = generate_backbone_demo_inputs(input_shape)
"""
        + checks
    )


TEST_RESNET_STH = _backbone_test(
    "ResNetSTH",
    "STHConv",
    "resnet_sth",
    """
    # ResNet-18: conv1 and conv2 of each BasicBlock are STH convs
    resnet_sth = ResNetSTH(18, num_segments=8, pretrained=None)
    resnet_sth.init_weights()
    sth_convs = [m for m in resnet_sth.modules() if isinstance(m, STHConv)]
    assert len(sth_convs) == 16
    assert all(conv.num_segments == 8 for conv in sth_convs)
    feat = resnet_sth(imgs)
    assert feat.shape == torch.Size([8, 512, 2, 2])

    # ResNet-50: conv2 of each Bottleneck
    resnet_sth = ResNetSTH(50, num_segments=8, temporal_groups=2, pretrained=None)
    resnet_sth.init_weights()
    sth_convs = [m for m in resnet_sth.modules() if isinstance(m, STHConv)]
    assert len(sth_convs) == 16
    assert all(conv.temporal_groups == 2 for conv in sth_convs)
    feat = resnet_sth(imgs)
    assert feat.shape == torch.Size([8, 2048, 2, 2])
""",
)

TEST_MOBILENET_V2_STH = _backbone_test(
    "MobileNetV2STH",
    "STHDepthwiseConv",
    "mobilenetv2_sth",
    """
    mobilenetv2_sth = MobileNetV2STH(num_segments=8, pretrained=None)
    mobilenetv2_sth.init_weights()
    assert any(
        isinstance(m, STHDepthwiseConv) for m in mobilenetv2_sth.modules())
    feat = mobilenetv2_sth(imgs)
    assert feat.shape == torch.Size([8, 1280, 2, 2])

    mobilenetv2_sth_05 = MobileNetV2STH(
        num_segments=8, widen_factor=0.5, pretrained=None)
    mobilenetv2_sth_05.init_weights()
    feat = mobilenetv2_sth_05(imgs)
    assert feat.shape == torch.Size([8, 1280, 2, 2])
""",
)

TEST_RECOGNIZER = """

def test_sth():
    register_all_modules()
    config = get_recognizer_cfg(
        'sth/sth_imagenet-pretrained-r50_8xb16-1x1x8-50e_sthv2-rgb.py')
    config.model['backbone']['pretrained'] = None

    input_shape = (1, 8, 3, 32, 32)
    train_test_step(config, input_shape)
"""

# a recognizer test file in the pattern of tests/models/recognizers/test_recognizer2d.py,
# for a host source without it
TEST_RECOGNIZER_FILE = """from unittest.mock import MagicMock

import torch

from mmaction.registry import MODELS
from mmaction.structures import ActionDataSample
from mmaction.testing import get_recognizer_cfg
from mmaction.utils import register_all_modules


def train_test_step(cfg, input_shape):
    \"\"\"A train step and a test step of the recognizer of ``cfg``.\"\"\"
    recognizer = MODELS.build(cfg.model)
    num_classes = cfg.model.cls_head.num_classes
    batch_size = input_shape[0]
    input_shape = input_shape[1:]
    data_batch = {
        'inputs':
        [torch.randint(0, 256, input_shape) for i in range(batch_size)],
        'data_samples':
        [ActionDataSample().set_gt_label(2) for i in range(batch_size)]
    }

    optim_wrapper = MagicMock()
    loss_vars = recognizer.train_step(data_batch, optim_wrapper)
    assert 'loss' in loss_vars
    assert 'loss_cls' in loss_vars
    optim_wrapper.update_params.assert_called_once()

    with torch.no_grad():
        predictions = recognizer.test_step(data_batch)
    score = predictions[0].pred_score
    assert len(predictions) == batch_size
    assert score.shape == torch.Size([num_classes])

    # twice sample + 3 crops
    num_views = input_shape[0] * 2 * 3
    input_shape = (num_views, *input_shape[1:])
    data_batch['inputs'] = [torch.randint(0, 256, input_shape)]
    with torch.no_grad():
        predictions = recognizer.test_step(data_batch)
    score = predictions[0].pred_score
    assert len(predictions) == batch_size
    assert score.shape == torch.Size([num_classes])
    return loss_vars, predictions
"""
RECOGNIZER_TESTS = "tests/models/recognizers/test_recognizer2d.py"


def _register(text: str, imports: dict[str, list[str]], relative: str) -> str:
    """The host ``__init__.py`` ``text`` with ``from <module> import <names>`` lines after
    its last relative import and the names added to its ``__all__`` list (isort and yapf
    place them)."""
    tree = ast.parse(text)
    assignments = [
        node
        for node in tree.body
        if isinstance(node, ast.Assign)
        and any(isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets)
    ]
    if not assignments or not isinstance(assignments[0].value, ast.List):
        raise ValueError(f"{relative}: no '__all__ = [...]' list to add {imports} to")
    node = assignments[0]
    names = [ast.literal_eval(e) for e in node.value.elts]
    names += [name for group in imports.values() for name in group if name not in names]
    lines = text.splitlines(keepends=True)
    updated = (
        "".join(lines[: node.lineno - 1])
        + f"__all__ = {names!r}\n"
        + "".join(lines[node.end_lineno :])
    )
    added = "".join(
        f"from {module} import {', '.join(group)}\n" for module, group in imports.items()
    )
    last = max(n.end_lineno for n in tree.body if isinstance(n, ast.ImportFrom) and n.level)
    lines = updated.splitlines(keepends=True)
    return "".join(lines[:last]) + added + "".join(lines[last:])


def _rewrite_sources(
    sources: dict[str, str], rules: PythonRules, repo: Path, tree: ExportTree, problems: list[str]
) -> None:
    """Each of ``sources`` (plugzoo file: exported file) rewritten by ``rules`` into
    ``tree``; what a file refuses goes to ``problems``."""
    for source, target in sources.items():
        try:
            text = rewrite_python((repo / source).read_text(encoding="utf-8"), source, rules)
        except ExportRefused as refused:
            problems.extend(refused.problems)
            continue
        tree.files[target] = text


def _core_tree(host_src: Path, repo: Path, tree: ExportTree, problems: list[str]) -> None:
    _rewrite_sources(CORE_SOURCES, CORE_RULES, repo, tree, problems)
    for relative, imports in CORE_INITS.items():
        path = host_src / relative
        if not path.is_file():
            raise FileNotFoundError(f"--host-src {host_src}: {relative} is missing")
        tree.files[relative] = _register(path.read_text(encoding="utf-8"), imports, relative)
    for name in CONFIGS:
        tree.files[f"{CORE_CONFIGS}/{name}"] = core_config(name, repo)
    tree.files[f"{CORE_CONFIGS}/README.md"] = core_readme(list(CONFIGS), repo)
    tree.files[f"{CORE_CONFIGS}/metafile.yml"] = core_metafile(list(CONFIGS), repo)
    index_line = f"  - {CORE_CONFIGS}/metafile.yml\n"
    index = host_src / "model-index.yml"
    if index.is_file():
        tree.files["model-index.yml"] = insert_after_last(
            index.read_text(encoding="utf-8"),
            lambda line: line.strip().startswith("- configs/recognition/"),
            index_line,
        )
    else:
        tree.skipped["model-index.yml"] = (
            f"not in the host source (an sdist keeps a copy under mmaction/.mim/); add "
            f"{index_line.strip()!r} to its Import list"
        )
    for relative in ("README.md", "README_zh-CN.md"):
        tree.skipped[relative] = (
            "a hand edit: add STH (arXiv'2020) to the supported-algorithms table, linking "
            f"{CORE_CONFIGS}/README.md"
        )
    tests = {
        "tests/models/common/test_sth_conv.py": TEST_STH_CONV,
        "tests/models/backbones/test_resnet_sth.py": TEST_RESNET_STH,
        "tests/models/backbones/test_mobilenet_v2_sth.py": TEST_MOBILENET_V2_STH,
    }
    for relative, text in tests.items():
        tree.files[relative] = with_header(text, HEADER)
    recognizers = host_src / RECOGNIZER_TESTS
    if recognizers.is_file():
        tree.files[RECOGNIZER_TESTS] = (
            recognizers.read_text(encoding="utf-8").rstrip("\n") + "\n" + TEST_RECOGNIZER
        )
    else:
        tree.files["tests/models/recognizers/test_recognizer2d_sth.py"] = with_header(
            TEST_RECOGNIZER_FILE + TEST_RECOGNIZER, HEADER
        )
        tree.skipped[RECOGNIZER_TESTS] = (
            "not in the host source (an sdist has no tests/); test_sth() was written to "
            "tests/models/recognizers/test_recognizer2d_sth.py with the file's "
            "train_test_step: move it into test_recognizer2d.py"
        )


def _project_tree(repo: Path, tree: ExportTree, problems: list[str]) -> None:
    _rewrite_sources(SOURCES, RULES, repo, tree, problems)
    tree.files[f"{PROJECT}/models/__init__.py"] = with_header(MODELS_INIT, HEADER)
    for name in CONFIGS:
        tree.files[f"{PROJECT}/configs/{name}"] = project_config(name, repo)
    tree.files[f"{PROJECT}/README.md"] = project_readme(list(CONFIGS))


def export_sth(
    host_src: Path, repo: Path = REPO_ROOT, route: str = "project", formatted: bool = True
) -> ExportTree:
    """The tree of STH against the MMAction2 source ``host_src`` by ``route``
    (``'project'``: ``projects/sth/``; ``'core'``: ``mmaction/``, ``configs/``,
    ``tests/``), in MMAction2's pre-commit style unless ``formatted`` is False.

    Raises:
        ExportRefused: something exported would still depend on plugzoo or on Python > 3.7.
        FileNotFoundError: ``host_src`` is not an MMAction2 source tree.
        ValueError: an unknown route.
        ExportToolFailed: ``formatted`` and a pinned tool is missing from the export cache
            or fails.
    """
    # absolute: the formatters read the host's setup.cfg from their own scratch folder
    host_src = Path(host_src).resolve()
    if route not in ROUTES:
        raise ValueError(f"--route {route!r}: expected one of {', '.join(ROUTES)}")
    for required in ("mmaction/registry.py", "setup.cfg"):
        if not (host_src / required).is_file():
            raise FileNotFoundError(
                f"--host-src {host_src}: {required} is missing; pass an MMAction2 1.2.0 "
                "source tree (a git checkout or the extracted sdist)"
            )
    tree = ExportTree(paper="sth", host="mmaction2")
    problems: list[str] = []
    if route == "core":
        _core_tree(host_src, repo, tree, problems)
    else:
        _project_tree(repo, tree, problems)
    if problems:
        raise ExportRefused("sth", problems)
    problems = [
        f"{relative}:{line}: {what}"
        for relative, text in tree.files.items()
        for line, what in text_mentions(text, allowed=(PROVENANCE, PROVENANCE_LINES[0]))
    ]
    if problems:
        raise ExportRefused("sth", problems)
    if formatted:
        tree.files = mmaction_style(tree.files, host_src)
    return tree
