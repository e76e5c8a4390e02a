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
import re
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
        optional_modules: plugzoo modules left out of the export that a file imports only
            where they exist: the module-level ``try:`` importing one is removed with its
            handlers, so is each ``if <name> is not None:`` block on the name it binds, and
            each docstring paragraph or list item that refers to one (``:mod:`.name```);
            any other mention of one is refused.
    """

    module_map: dict[str, str]
    glue: frozenset[str] = frozenset()
    helpers: dict[str, str] = field(default_factory=dict)
    text_map: dict[str, str] = field(default_factory=dict)
    header: tuple[str, ...] = ()
    relative_imports: bool = False
    optional_modules: frozenset[str] = frozenset()

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
    removed, optional_names = _drop_optional_modules(tree, path, rules, source)

    for node in ast.walk(tree):
        if id(node) in removed:
            continue
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
        if isinstance(node, ast.Name) and node.id in optional_names and id(node) not in removed:
            problems.append(
                f"{path}:{node.lineno}: uses the optional module {node.id!r} outside an "
                f"'if {node.id} is not None:' block"
            )
        elif isinstance(node, ast.Name) and node.lineno not in glue_lines:
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
    optional_words = tuple(module.rpartition(".")[2] for module in rules.optional_modules)
    problems += [
        f"{path}:{line}: {what} (a module that is not exported)"
        for line, what in plugzoo_mentions(rewritten, optional_words)
    ]
    if problems:
        raise ExportRefused(path, problems)
    return with_header(rewritten, rules.header)


def _resolved_imports(node: ast.Import | ast.ImportFrom, path: str) -> list[tuple[str, str]]:
    """``(bound name, dotted module)`` for each name the import ``node`` of the plugzoo file
    ``path`` binds; ``from package import name`` gives ``package.name`` (a module or not)."""
    if isinstance(node, ast.Import):
        return [(a.asname or a.name.split(".")[0], a.name) for a in node.names]
    package = node.module or ""
    if node.level:
        parts = _module_of(path).split(".")
        if not path.endswith("__init__.py"):
            parts = parts[:-1]
        base = parts[: len(parts) - (node.level - 1)]
        package = ".".join(base + ([node.module] if node.module else []))
    return [(a.asname or a.name, f"{package}.{a.name}") for a in node.names]


def _is_optional(module: str, rules: PythonRules) -> bool:
    return any(module == m or module.startswith(m + ".") for m in rules.optional_modules)


def _drop_optional_modules(
    tree: ast.Module, path: str, rules: PythonRules, source: _Source
) -> tuple[set[int], set[str]]:
    """Edit ``source`` so that it no longer reaches ``rules.optional_modules``: the
    module-level ``try:`` blocks that import only such modules, the ``if <name> is not
    None:`` blocks (without ``else``) on the names they bind, and the docstring paragraphs
    and list items that refer to one. Returns the ids of the removed nodes and their
    descendants, and the bound names."""
    removed: set[int] = set()
    names: set[str] = set()
    for node in tree.body:
        if not isinstance(node, ast.Try) or not all(
            isinstance(statement, ast.Import | ast.ImportFrom) for statement in node.body
        ):
            continue
        imported = [pair for statement in node.body for pair in _resolved_imports(statement, path)]
        if all(_is_optional(module, rules) for _, module in imported):
            source.drop_lines(node.lineno, node.end_lineno)
            removed.update(id(n) for n in ast.walk(node))
            names.update(name for name, _ in imported)
    for node in ast.walk(tree):
        test = getattr(node, "test", None)
        if (
            isinstance(node, ast.If)
            and not node.orelse
            and isinstance(test, ast.Compare)
            and isinstance(test.left, ast.Name)
            and test.left.id in names
            and [type(op) for op in test.ops] == [ast.IsNot]
            and isinstance(test.comparators[0], ast.Constant)
            and test.comparators[0].value is None
        ):
            source.drop_lines(node.lineno, node.end_lineno)
            removed.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree) if rules.optional_modules else ():
        if not isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) or not node.body:
            continue
        first = node.body[0]
        value = first.value if isinstance(first, ast.Expr) else None
        if not (isinstance(value, ast.Constant) and isinstance(value.value, str)):
            continue
        start = source.offset(first.lineno, first.col_offset)
        raw = source.text[start : source.offset(first.end_lineno, first.end_col_offset)]
        kept = _without_references(raw, path, rules)
        if kept != raw:
            source.replace(first, kept)
    return removed, names


# a Sphinx cross-reference, ``:role:`target``` or ``:role:`title <target>```
_REFERENCE = re.compile(r":[\w:]+:`(?:[^`<]*<)?~?([\w.]+)>?`")
_BULLET = re.compile(r"^\s*[-*] ")


def _without_references(raw: str, path: str, rules: PythonRules) -> str:
    """The docstring ``raw`` (with its quotes) without the paragraphs and list items that
    refer to one of ``rules.optional_modules``; its first paragraph and last line stay."""
    package = _module_of(path).split(".")
    if not path.endswith("__init__.py"):
        package = package[:-1]

    def refers(block: list[str]) -> bool:
        for target in _REFERENCE.findall(" ".join(block)):
            dots = len(target) - len(target.lstrip("."))
            if dots:  # relative to the file's package, as Sphinx resolves it
                target = ".".join(package[: len(package) - (dots - 1)] + [target[dots:]])
            if _is_optional(target, rules):
                return True
        return False

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip())

    lines = raw.splitlines(keepends=True)
    # paragraphs, list items and single blank lines; the first holds the opening quotes
    blocks = [[lines[0]]]
    for line in lines[1:-1]:
        block = blocks[-1]
        if (
            not line.strip()
            or not block[-1].strip()
            or _BULLET.match(line)
            or (_BULLET.match(block[0]) and indent(line) <= indent(block[0]))
        ):
            blocks.append([line])
        else:
            block.append(line)
    kept, dropped = [], set()
    for number, block in enumerate(blocks):
        if number in dropped:
            continue
        if number and block[0].strip() and refers(block):
            if not _BULLET.match(block[0]):  # a paragraph goes with one blank line
                following = blocks[number + 1] if number + 1 < len(blocks) else None
                if following is not None and not following[0].strip():
                    dropped.add(number + 1)
                elif kept and not kept[-1].strip():
                    kept.pop()
            continue
        kept.extend(block)
    return "".join(kept + lines[-1:]) if len(lines) > 1 else raw


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


def plugzoo_mentions(text: str, words: tuple[str, ...] = PLUGZOO_WORDS) -> list[tuple[int, str]]:
    """``(line, what)`` for every token of ``text`` that still names plugzoo (or holds one
    of ``words``)."""
    found = []
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type in (tokenize.COMMENT, tokenize.STRING, tokenize.NAME):
            for word in words:
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
