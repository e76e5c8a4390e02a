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
    """

    name: str
    paper: str
    registry_names: dict[str, list[str]] = field(default_factory=dict)
    configs: list[str] = field(default_factory=list)
    demo_stage: str | None = None
    commands: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Extension:
    """An extension package: the plugins one host gains by importing it.

    Args:
        name: Import name of the extension package, e.g. ``"mmaction_ext"``.
        host: Distribution name of the host library, e.g. ``"mmaction2"``.
        host_module: Import name of the host, e.g. ``"mmaction"``.
        plugins: The papers this extension provides.
        baseline_stage: ``"module:function"`` running the host's own baseline in the demo.
    """

    name: str
    host: str
    host_module: str
    plugins: tuple[Plugin, ...] = ()
    baseline_stage: str | None = None

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
