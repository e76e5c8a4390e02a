"""Discovery: which extensions and plugins are installed, read from package metadata.

Each extension package declares itself through the ``plugzoo.plugins`` entry-point group
(see pyproject.toml), the way pytest discovers its plugins: the host never has to be edited
to learn about us. An entry point resolves to an :class:`Extension`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from importlib.metadata import entry_points

ENTRY_POINT_GROUP = "plugzoo.plugins"


@dataclass(frozen=True)
class Plugin:
    """One paper turned into names inside a host's registries.

    Args:
        name: Short name, e.g. ``"STH"``.
        paper: Citation, e.g. ``"arXiv 2003.08042"``.
        registry_names: ``{registry: [names]}`` this plugin adds, e.g.
            ``{"mmaction.MODELS": ["STHConv", "ResNetSTH"]}``.
        configs: Paths (relative to the repository) of its host-native configs.
        demo_stage: ``"module:function"`` that runs its ``plugzoo demo`` stage, or ``None``.
        commands: ``{name: "module:function"}`` added to the ``plugzoo`` command; the
            function takes the remaining command-line arguments and returns an exit code.
        arxiv: The paper's arXiv identifier, e.g. ``"2003.08042"``.
        readme: Path (relative to the repository) of the paper's README. A plugin that sets
            it is a row of the papers table (``plugzoo list --markdown``); baselines and
            shared ground leave it unset.
        status: One clause saying where the plugin stands against the paper's claims, and
            plainly which claim is not reproduced.
    """

    name: str
    paper: str
    registry_names: dict[str, list[str]] = field(default_factory=dict)
    configs: list[str] = field(default_factory=list)
    demo_stage: str | None = None
    commands: dict[str, str] = field(default_factory=dict)
    arxiv: str | None = None
    readme: str | None = None
    status: str | None = None


@dataclass(frozen=True)
class Extension:
    """An extension package: the plugins one host gains by importing it.

    Args:
        name: Import name of the extension package, e.g. ``"mmaction_ext"``.
        host: Distribution name of the host library, e.g. ``"mmaction2"``.
        host_module: Import name of the host, e.g. ``"mmaction"``.
        plugins: The papers this extension provides.
        baseline_stage: ``"module:function"`` running the host's own baseline in the demo.
        host_title: The host's name as its authors write it, e.g. ``"MMAction2"``.
    """

    name: str
    host: str
    host_module: str
    plugins: tuple[Plugin, ...] = ()
    baseline_stage: str | None = None
    host_title: str = ""

    def activate(self):
        """Import the extension, which applies host fixes and registers its names."""
        return importlib.import_module(self.name)


def load_callable(spec: str):
    """Resolve ``"package.module:function"`` to the function."""
    module_name, sep, attr = spec.partition(":")
    if not (module_name and sep and attr):
        raise ValueError(f"expected 'module:function', got {spec!r}")
    return getattr(importlib.import_module(module_name), attr)


def load_catalogue() -> list[Extension]:
    """All extensions declared under the ``plugzoo.plugins`` entry points, sorted by name."""
    extensions = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        declared = ep.load()
        if not isinstance(declared, Extension):
            raise TypeError(
                f"entry point {ep.name!r} in group {ENTRY_POINT_GROUP!r} ({ep.value}) must "
                f"resolve to plugins.catalogue.Extension, got {type(declared).__name__}"
            )
        extensions.append(declared)
    return sorted(extensions, key=lambda e: e.name)


PAPERS_TABLE_HEADER = (
    "| paper | host | registered names | README | status |",
    "|---|---|---|---|---|",
)


def papers_table(extensions: list[Extension] | None = None, pins: dict[str, str] | None = None):
    """The papers table in Markdown: one row per plugin that declares a ``readme``.

    Args:
        extensions: The catalogue to read; default :func:`load_catalogue`.
        pins: ``{distribution: version}`` giving each host's pinned version; default the
            repository's pin files (:func:`plugins.doctor.read_pins`).

    Returns:
        The table's lines joined by newlines, without a trailing newline.
    """
    if extensions is None:
        extensions = load_catalogue()
    if pins is None:
        from plugins.doctor import read_pins

        pins = read_pins()
    lines = list(PAPERS_TABLE_HEADER)
    for extension in extensions:
        host = f"{extension.host_title or extension.host} {pins[extension.host]}"
        for plugin in extension.plugins:
            if plugin.readme is None:
                continue
            if not (plugin.arxiv and plugin.status):
                raise ValueError(
                    f"plugin {plugin.name!r} ({extension.name}) declares a readme, so it "
                    "must also declare arxiv and status"
                )
            paper = f"{plugin.name} ([arXiv {plugin.arxiv}](https://arxiv.org/abs/{plugin.arxiv}))"
            names = "; ".join(
                f"{', '.join(f'`{name}`' for name in names)} ({registry})"
                for registry, names in plugin.registry_names.items()
            )
            readme = f"[{plugin.readme.rpartition('/')[0]}/]({plugin.readme})"
            lines.append(f"| {paper} | {host} | {names} | {readme} | {plugin.status} |")
    return "\n".join(lines)
