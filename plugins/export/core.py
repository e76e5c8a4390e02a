"""What every host's export shares: Python rewriting, checks, the written tree and its diff.

A plugin's source is rewritten into a host's source tree by edits placed at the positions
Python's ``ast`` gives (imports, registration glue, plugzoo helpers) and, in comments and
string literals only, by a table of path replacements applied to the tokens ``tokenize``
finds. Nothing is rewritten by text search over code. What the rewrite cannot remove (an
import of a plugzoo package it has no mapping for, a plugzoo helper without a host
replacement, a mention of plugzoo left in a docstring) makes the export refuse, listing
every place.
"""

from __future__ import annotations

import ast
import difflib
import io
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

# plugzoo's own packages: nothing exported may import them
PLUGZOO_PACKAGES = ("plugins", "recbole_ext", "mmaction_ext", "retrieval_ext")
# words that betray a plugzoo dependency in comments and strings (the provenance line is
# the one place plugzoo is named on purpose)
PLUGZOO_WORDS = ("plugzoo", "recbole_ext", "mmaction_ext", "retrieval_ext", "plugins.", "plugins/")
# the oldest Python the hosts' CI runs (RecBole 3.8, MMAction2 and LAVIS 3.7)
PYTHON_FLOOR = (3, 7)
# attribute calls newer than the floor: name -> the version that added it
_NEWER_METHODS = {"removeprefix": "3.9", "removesuffix": "3.9", "bit_count": "3.10"}
_NEWER_FUNCTIONS = {"pairwise": "3.10", "cache": "3.9"}  # itertools.pairwise, functools.cache


class ExportRefused(Exception):
    """The export cannot produce host-only code; ``problems`` says where and why."""

    def __init__(self, paper: str, problems: list[str]):
        self.problems = list(problems)
        listing = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(
            f"plugzoo export {paper}: refused, {len(self.problems)} place(s) still depend on "
            f"plugzoo or on Python newer than {'.'.join(map(str, PYTHON_FLOOR))}:\n{listing}"
        )


class ExportToolFailed(RuntimeError):
    """A pinned tool the export runs (a formatter) is missing from the export cache or
    failed on the exported files."""


@dataclass(frozen=True)
class PythonRules:
    """How one plugin's Python files become host files.

    Attributes:
        module_map: plugzoo module (or package prefix) -> host module.
        glue: names of plugzoo registration glue; decorators, calls and assignments
            naming them are removed with their whole lines.
        helpers: ``"module.name"`` of a plugzoo helper -> the host expression replacing
            every use of it (its import is dropped).
        text_map: replacements applied to comments and string literals only (paths and
            dotted names of plugzoo files the docstrings point at).
        header: comment lines that replace the file's leading comment block.
        relative_imports: keep relative imports (the package is exported with its layout);
            otherwise a relative import is resolved and mapped by ``module_map`` (relative
            again inside the file's host package), and refused where nothing maps it.
    """

    module_map: dict[str, str]
    glue: frozenset[str] = frozenset()
    helpers: dict[str, str] = field(default_factory=dict)
    text_map: dict[str, str] = field(default_factory=dict)
    header: tuple[str, ...] = ()
    relative_imports: bool = False

    def host_module(self, module: str) -> str | None:
        """The host module ``module`` maps to (longest matching prefix), or None."""
        for source in sorted(self.module_map, key=len, reverse=True):
            if module == source or module.startswith(source + "."):
                return self.module_map[source] + module[len(source) :]
        return None


def _is_plugzoo(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in PLUGZOO_PACKAGES


class _Source:
    """A source text with edits addressed by ``ast`` positions (1-based line, UTF-8 column)."""

    def __init__(self, text: str):
        self.text = text
        self.lines = text.splitlines(keepends=True)
        starts, offset = [], 0
        for line in self.lines:
            starts.append(offset)
            offset += len(line)
        self.starts = starts + [offset]
        self.edits: list[tuple[int, int, str]] = []

    def offset(self, line: int, column: int) -> int:
        """Character offset of ``(line, byte column)``; ``ast`` counts UTF-8 bytes."""
        text = self.lines[line - 1] if line <= len(self.lines) else ""
        return self.starts[line - 1] + len(text.encode("utf-8")[:column].decode("utf-8"))

    def replace(self, node, text: str) -> None:
        start = self.offset(node.lineno, node.col_offset)
        end = self.offset(node.end_lineno, node.end_col_offset)
        self.edits.append((start, end, text))

    def drop_lines(self, first: int, last: int) -> None:
        self.edits.append((self.starts[first - 1], self.starts[last], ""))

    def result(self) -> str:
        out, position = [], 0
        for start, end, text in sorted(set(self.edits)):
            if start < position:
                raise ValueError(f"overlapping edits at offset {start}")
            out.append(self.text[position:start])
            out.append(text)
            position = end
        out.append(self.text[position:])
        return "".join(out)


def _base_name(node) -> str | None:
    """``name`` of ``name``, ``a.name`` or ``name(...)``."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def rewrite_python(text: str, path: str, rules: PythonRules) -> str:
    """``text`` of the plugzoo file ``path`` as host code: imports mapped, glue removed,
    helpers replaced, comment and docstring paths mapped, ``rules.header`` on top.

    Raises:
        ExportRefused: a plugzoo dependency is left, or syntax newer than the floor is used.
    """
    tree = ast.parse(text, filename=path)
    source = _Source(text)
    problems: list[str] = []
    replaced: dict[str, str] = {}  # local name bound to a helper -> host expression

    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level and rules.relative_imports:
                continue
            if node.level:
                statement = _mapped_relative_import(node, path, rules)
                if statement is None:
                    problems.append(
                        f"{path}:{node.lineno}: relative import with no host module "
                        "(use absolute imports, or map the module)"
                    )
                else:
                    source.replace(node, statement)
                continue
            if not _is_plugzoo(node.module):
                continue
            kept = []
            for alias in node.names:
                dotted = f"{node.module}.{alias.name}"
                if dotted in rules.helpers:
                    replaced[alias.asname or alias.name] = rules.helpers[dotted]
                elif alias.name in rules.glue:
                    continue
                else:
                    kept.append(alias)
            target = rules.host_module(node.module)
            if kept and target is None:
                names = ", ".join(a.name for a in kept)
                problems.append(
                    f"{path}:{node.lineno}: imports {names} from {node.module}, which has no "
                    "host module"
                )
                continue
            if kept:
                statement = ast.ImportFrom(module=target, names=kept, level=0)
                source.replace(node, ast.unparse(statement))
            else:
                source.drop_lines(node.lineno, node.end_lineno)
        elif isinstance(node, ast.Import):
            names = []
            for alias in node.names:
                if not _is_plugzoo(alias.name):
                    names.append(alias)
                    continue
                target = rules.host_module(alias.name)
                if target is None:
                    problems.append(f"{path}:{node.lineno}: imports {alias.name} (no host module)")
                    continue
                if alias.asname is None and target.split(".")[0] != alias.name.split(".")[0]:
                    problems.append(
                        f"{path}:{node.lineno}: 'import {alias.name}' without 'as' cannot be "
                        "renamed; import it under an alias"
                    )
                    continue
                names.append(ast.alias(name=target, asname=alias.asname))
            if [a.name for a in names] != [a.name for a in node.names]:
                if names:
                    source.replace(node, ast.unparse(ast.Import(names=names)))
                else:
                    source.drop_lines(node.lineno, node.end_lineno)

    glue_lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            for decorator in node.decorator_list:
                if _base_name(decorator) in rules.glue:
                    source.drop_lines(decorator.lineno, decorator.end_lineno)
                    glue_lines.update(range(decorator.lineno, decorator.end_lineno + 1))
    for node in tree.body:
        targets = []
        if isinstance(node, ast.Assign):
            targets = [t.id for t in node.targets if isinstance(t, ast.Name)]
        elif isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            targets = [_base_name(node.value)]
        if any(t in rules.glue for t in targets):
            source.drop_lines(node.lineno, node.end_lineno)
            glue_lines.update(range(node.lineno, node.end_lineno + 1))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.lineno not in glue_lines:
            if node.id in replaced:
                source.replace(node, replaced[node.id])
            elif node.id in rules.glue:
                problems.append(
                    f"{path}:{node.lineno}: uses the plugzoo glue {node.id!r} outside a "
                    "decorator or a module-level statement"
                )

    problems.extend(f"{path}:{line}: {what}" for line, what in newer_syntax(text))
    if problems:
        raise ExportRefused(path, problems)
    rewritten = _map_comments_and_strings(source.result(), rules.text_map)
    if rules.header:  # the file's own header is replaced, so it is not checked
        rewritten = with_header(rewritten, ())
    problems = [f"{path}:{line}: {what}" for line, what in plugzoo_mentions(rewritten)]
    if problems:
        raise ExportRefused(path, problems)
    return with_header(rewritten, rules.header)


def _module_of(path: str) -> str:
    """The dotted module of the repository file ``path`` (a package for ``__init__.py``)."""
    parts = list(Path(path).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _mapped_relative_import(node: ast.ImportFrom, path: str, rules: PythonRules) -> str | None:
    """The host form of the relative import ``node`` of the plugzoo file ``path``: relative
    again where the host module lies in the file's own host package, absolute elsewhere;
    None where the imported module has no host module."""
    package = _module_of(path).split(".")
    if not path.endswith("__init__.py"):
        package = package[:-1]
    if node.level - 1 > len(package) - 1:
        return None
    base = package[: len(package) - (node.level - 1)]
    target = rules.host_module(".".join(base + ([node.module] if node.module else [])))
    own = rules.host_module(_module_of(path))
    if target is None or own is None:
        return None
    own_package = own if path.endswith("__init__.py") else own.rpartition(".")[0]
    names = ", ".join(a.name if a.asname is None else f"{a.name} as {a.asname}" for a in node.names)
    if target == own_package:
        return f"from . import {names}"
    if target.startswith(own_package + "."):
        return f"from .{target[len(own_package) + 1 :]} import {names}"
    return f"from {target} import {names}"


def _map_comments_and_strings(text: str, text_map: dict[str, str]) -> str:
    """Apply ``text_map`` inside comment and string tokens only (longest key first)."""
    if not text_map:
        return text
    source = _Source(text)
    keys = sorted(text_map, key=len, reverse=True)
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type not in (tokenize.COMMENT, tokenize.STRING):
            continue
        value = token.string
        for key in keys:
            value = value.replace(key, text_map[key])
        if value != token.string:
            (line, column), (end_line, end_column) = token.start, token.end
            start = source.starts[line - 1] + column  # tokenize counts characters
            source.edits.append((start, source.starts[end_line - 1] + end_column, value))
    return source.result()


def plugzoo_mentions(text: str) -> list[tuple[int, str]]:
    """``(line, what)`` for every token of ``text`` that still names plugzoo."""
    found = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type in (tokenize.COMMENT, tokenize.STRING, tokenize.NAME):
            for word in PLUGZOO_WORDS:
                if word in token.string:
                    found.append((token.start[0], f"mentions {word!r}: {token.line.strip()}"))
                    break
    return found


def text_mentions(text: str, allowed: tuple[str, ...] = ()) -> list[tuple[int, str]]:
    """``(line, what)`` for every line of a non-Python file that names plugzoo, except the
    lines holding one of ``allowed`` (the provenance line)."""
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        if any(phrase in line for phrase in allowed):
            continue
        for word in PLUGZOO_WORDS:
            if word in line:
                found.append((number, f"mentions {word!r}: {line.strip()}"))
                break
    return found


def with_header(text: str, header: tuple[str, ...]) -> str:
    """``text`` with its leading comment block replaced by ``header`` (removed when empty)."""
    lines = text.splitlines(keepends=True)
    while lines and lines[0].startswith("#"):
        lines.pop(0)
    while lines and not lines[0].strip():
        lines.pop(0)
    top = "".join(line + "\n" for line in header) + "\n" if header else ""
    return top + "".join(lines)


def newer_syntax(text: str, floor: tuple[int, int] = PYTHON_FLOOR) -> list[tuple[int, str]]:
    """``(line, what)`` for constructs of ``text`` newer than Python ``floor`` (3.7): match,
    parenthesised context managers, ``zip(strict=)``, ``str.removeprefix`` and friends,
    ``X | Y`` type unions and ``list[int]`` generics evaluated at run time."""
    tree = ast.parse(text)
    lines = text.splitlines()
    found = []
    annotations: set[int] = set()  # ids of nodes inside annotations
    postponed = any(
        isinstance(n, ast.ImportFrom)
        and n.module == "__future__"
        and any(a.name == "annotations" for a in n.names)
        for n in tree.body
    )
    for node in ast.walk(tree):
        held = []
        if isinstance(node, ast.arg | ast.AnnAssign) and node.annotation is not None:
            held.append(node.annotation)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.returns:
            held.append(node.returns)
        for annotation in held:
            annotations.update(id(n) for n in ast.walk(annotation))
    for node in ast.walk(tree):
        if isinstance(node, ast.Match):
            found.append((node.lineno, "match statement (3.10)"))
        elif isinstance(node, ast.With | ast.AsyncWith) and len(node.items) > 1:
            head = lines[node.lineno - 1][node.col_offset :]
            after = head.split("with", 1)[1].lstrip()
            if after.startswith("(") and node.items[0].context_expr.col_offset > head.find("("):
                found.append((node.lineno, "parenthesised context managers (3.10)"))
        elif isinstance(node, ast.Call):
            name = _base_name(node.func)
            if name == "zip" and any(k.arg == "strict" for k in node.keywords):
                found.append((node.lineno, "zip(strict=) (3.10)"))
            elif isinstance(node.func, ast.Attribute) and name in _NEWER_METHODS:
                found.append((node.lineno, f".{name}() ({_NEWER_METHODS[name]})"))
            elif name in _NEWER_FUNCTIONS and isinstance(node.func, ast.Attribute):
                owner = node.func.value
                if isinstance(owner, ast.Name) and owner.id in ("itertools", "functools"):
                    found.append((node.lineno, f"{owner.id}.{name} ({_NEWER_FUNCTIONS[name]})"))
        if id(node) in annotations and postponed:
            continue
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            if any(_is_type_name(side) for side in (node.left, node.right)):
                found.append((node.lineno, "X | Y type union evaluated at run time (3.10)"))
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.value, ast.Name)
            and node.value.id in ("list", "dict", "tuple", "set", "frozenset", "type")
        ):
            found.append((node.lineno, f"{node.value.id}[...] generic at run time (3.9)"))
    return sorted(set(found))


def _is_type_name(node) -> bool:
    builtins = ("int", "float", "str", "bytes", "bool", "list", "dict", "tuple", "set")
    if isinstance(node, ast.Constant) and node.value is None:
        return True
    return isinstance(node, ast.Name) and node.id in builtins


@dataclass
class ExportTree:
    """The files an export writes, by path relative to the host's root (POSIX), and the
    host files it could not edit because the host source lacks them."""

    paper: str
    host: str
    files: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # host path -> why

    def write(self, out: Path) -> list[Path]:
        """Write every file under ``out`` (sorted, UTF-8, ``\\n`` line ends)."""
        written = []
        for relative in sorted(self.files):
            target = Path(out) / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(self.files[relative])
            written.append(target)
        return written

    def diff(self, host_src: Path) -> str:
        """Unified diff of the host source against the exported tree (new files from
        ``/dev/null``), in path order."""
        chunks = []
        for relative in sorted(self.files):
            original = Path(host_src) / relative
            before = original.read_text(encoding="utf-8") if original.is_file() else ""
            chunks.extend(
                difflib.unified_diff(
                    before.splitlines(keepends=True),
                    self.files[relative].splitlines(keepends=True),
                    fromfile=f"a/{relative}" if original.is_file() else "/dev/null",
                    tofile=f"b/{relative}",
                )
            )
        return "".join(chunks)


def insert_after_last(text: str, predicate, addition: str) -> str:
    """``addition`` (whole lines) inserted after the last line for which ``predicate(line)``
    holds; at the end when none does."""
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    index = max((i for i, line in enumerate(lines) if predicate(line)), default=len(lines) - 1)
    return "".join(lines[: index + 1]) + addition + "".join(lines[index + 1 :])


def class_source(text: str, name: str) -> str:
    """The source of class ``name`` in ``text`` without its decorators."""
    tree = ast.parse(text)
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            lines = text.splitlines(keepends=True)
            return "".join(lines[node.lineno - 1 : node.end_lineno])
    raise KeyError(f"no class {name!r}")


def module_names(text: str) -> set[str]:
    """Names bound at the top level of module ``text`` (defs, classes, imports, assignments)."""
    names = set()
    for node in ast.parse(text).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names
