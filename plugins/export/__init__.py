"""``plugzoo export``: a plugin written into its host's contribution layout.

:mod:`plugins.export.core` holds what every host shares (import rewriting by ``ast``
positions, the Python-floor and plugzoo-dependency checks, the written tree and its diff);
one module per host knows that host's layout (:mod:`plugins.export.recbole`,
:mod:`plugins.export.mmaction`). Each paper
maps to the function that exports it; papers without one are refused by name.
"""

from __future__ import annotations

from plugins.export.core import ExportRefused, ExportTree

# paper -> (host, "module:function" taking the host source folder)
EXPORTERS = {
    "upsr": ("recbole", "plugins.export.recbole:export_upsr"),
    "sth": ("mmaction2", "plugins.export.mmaction:export_sth"),
    # the CLIP4Clip base alone; teachclip adds it unless --host-src already has it
    "clip4clip": ("lavis", "plugins.export.lavis_teachclip:export_clip4clip"),
    "teachclip": ("lavis", "plugins.export.lavis_teachclip:export_teachclip"),
    "bagformer": ("lavis", "plugins.export.lavis:export_bagformer"),
}
# papers whose host takes them by more than one route (the exporter's ``route`` argument)
ROUTED = ("sth",)
NOT_YET: dict[str, str] = {}  # paper -> why it cannot be exported yet


def export_paper(paper: str, host_src, route: str | None = None) -> ExportTree:
    """The export tree of ``paper`` against the host source folder ``host_src``; ``route``
    picks one of the host's contribution routes where it has several (STH: ``project``,
    the default, or ``core``)."""
    from plugins.catalogue import load_callable

    key = paper.lower()
    if route is not None and key not in ROUTED:
        raise ValueError(f"{paper}: --route applies to {', '.join(sorted(ROUTED))} only")
    if key in NOT_YET:
        raise ValueError(f"{paper}: {NOT_YET[key]}")
    if key not in EXPORTERS:
        known = sorted([*EXPORTERS, *NOT_YET])
        raise KeyError(f"unknown paper {paper!r}; known: {', '.join(known)}")
    options = {} if route is None else {"route": route}
    return load_callable(EXPORTERS[key][1])(host_src, **options)


__all__ = ["EXPORTERS", "ExportRefused", "ExportTree", "export_paper"]
