"""The ``plugzoo`` command: list, doctor, demo, export."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from tabulate import tabulate


def _list(args) -> int:
    from plugins.catalogue import load_catalogue, papers_table

    if args.markdown:
        print(papers_table())
        return 0
    rows = []
    for extension in load_catalogue():
        if not extension.plugins:
            rows.append([extension.name, extension.host, "(none yet)", "", "", ""])
        for plugin in extension.plugins:
            names = "; ".join(f"{reg}: {', '.join(n)}" for reg, n in plugin.registry_names.items())
            rows.append(
                [
                    extension.name,
                    extension.host,
                    plugin.name,
                    plugin.paper,
                    names,
                    ", ".join(plugin.configs),
                ]
            )
    print(
        tabulate(
            rows, headers=["extension", "host", "plugin", "paper", "registry names", "configs"]
        )
    )
    return 0


def _doctor(args) -> int:
    from plugins.doctor import run_checks

    checks = run_checks()
    print(
        tabulate(
            [[c.name, "ok" if c.ok else "FAIL", c.detail] for c in checks],
            headers=["check", "status", "detail"],
            maxcolwidths=[None, None, 90],
        )
    )
    failed = [c.name for c in checks if not c.ok]
    if failed:
        print(
            f"\nplugzoo doctor: {len(failed)} check(s) failed: {', '.join(failed)}", file=sys.stderr
        )
        return 1
    print("\nplugzoo doctor: all checks passed")
    return 0


def _demo(args) -> int:
    from plugins.demo import run_demo

    run_dir = args.out or Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S")
    size = "quick" if args.quick else "full" if args.full else "default"
    return run_demo(run_dir, size=size, only=args.stage, tick=args.tick)


def _export(args) -> int:
    from plugins.export import ExportRefused, export_paper
    from plugins.export.core import ExportToolFailed

    if args.out is None and not args.diff:
        print("plugzoo export: give --out DIR, --diff, or both", file=sys.stderr)
        return 2
    if not args.host_src.is_dir():
        print(f"plugzoo export: --host-src {args.host_src} is not a folder", file=sys.stderr)
        return 2
    # absolute: the exporters run tools from other folders, which read the host's files
    host_src = args.host_src.resolve()
    try:
        tree = export_paper(args.paper, host_src, route=args.route)
    except ExportRefused as refused:
        print(refused, file=sys.stderr)
        return 1
    except ExportToolFailed as error:
        print(f"plugzoo export {args.paper}: {error}", file=sys.stderr)
        return 1
    except (KeyError, ValueError, FileNotFoundError) as error:
        print(f"plugzoo export: {error}", file=sys.stderr)
        return 2
    if args.diff:
        sys.stdout.write(tree.diff(host_src))
    if args.out is not None:
        for path in tree.write(args.out):
            print(f"wrote {path}", file=sys.stderr)
    for relative, why in sorted(tree.skipped.items()):
        print(f"not written: {relative}: {why}", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="plugzoo", description="Research methods as plugins of RecBole, MMAction2, LAVIS."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    listing = commands.add_parser("list", help="print the plugin catalogue")
    listing.add_argument(
        "--markdown",
        action="store_true",
        help="print the papers table (Markdown) that README.md carries",
    )
    listing.set_defaults(func=_list)
    commands.add_parser(
        "doctor", help="check the environment against the verified pins"
    ).set_defaults(func=_doctor)
    demo = commands.add_parser(
        "demo", help="run every plugin beside its host's baseline and write a report"
    )
    demo.add_argument("--out", type=Path, help="run directory (default runs/demo-<time>)")
    sizes = demo.add_mutually_exclusive_group()
    sizes.add_argument(
        "--quick",
        action="store_true",
        help="smaller models and fewer epochs (for testing the demo itself)",
    )
    sizes.add_argument(
        "--full",
        action="store_true",
        help="the larger settings: more data and epochs (62 min once on a shared 2-core CPU)",
    )
    demo.add_argument(
        "--tick",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="print the time left this often while a stage runs (0: only between stages)",
    )
    demo.add_argument(
        "--stage",
        action="append",
        metavar="MODULE:FUNCTION",
        help="run only this stage (repeatable); see `plugzoo list`",
    )
    demo.set_defaults(func=_demo)
    export = commands.add_parser(
        "export",
        help="write a plugin into its host's contribution layout (docs/upstreaming.md)",
    )
    export.add_argument("paper", help="upsr, sth, clip4clip, teachclip, bagformer")
    export.add_argument(
        "--host-src",
        type=Path,
        required=True,
        help="the host's source tree at the pinned version (git checkout or extracted sdist)",
    )
    export.add_argument(
        "--out", type=Path, help="folder receiving the new and changed files, in host layout"
    )
    export.add_argument(
        "--diff", action="store_true", help="print a unified diff against --host-src"
    )
    export.add_argument(
        "--route",
        choices=("project", "core"),
        help="sth only: MMAction2's community project projects/sth/ (default) or its core "
        "package (mmaction/, configs/recognition/sth/, tests/)",
    )
    export.set_defaults(func=_export)
    _add_plugin_commands(commands)
    return parser


def _add_plugin_commands(commands) -> None:
    """Sub-commands declared by plugins (``Plugin.commands``), parsed by their own code."""
    from plugins.catalogue import load_callable, load_catalogue

    for extension in load_catalogue():
        for plugin in extension.plugins:
            for name, spec in plugin.commands.items():
                command = commands.add_parser(
                    name, add_help=False, help=f"{plugin.name} ({extension.name}): see --help"
                )
                command.set_defaults(
                    func=lambda args, spec=spec: load_callable(spec)(args.rest), passthrough=True
                )


def main(argv=None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if getattr(args, "passthrough", False):
        args.rest = rest  # a plugin command parses its own arguments
    elif rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
