"""The hosts' pinned sources (sdists) and the formatters the export check runs.

Both are downloaded once, by ``tools/setup_env.sh`` (``python -m plugins.export.sources``),
into a cache outside the environment: ``$PLUGZOO_EXPORT_CACHE`` (default
``~/.cache/plugzoo/export``), sdists under ``sdists/`` named by version, each formatter
under ``tools/<name>-<version>/``. The host versions are the pins of
``requirements/hosts.txt``; the formatter pins are in ``requirements/export.txt``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from plugins.paths import REPO_ROOT

HOST_PINS = REPO_ROOT / "requirements" / "hosts.txt"
EXPORT_PINS = REPO_ROOT / "requirements" / "export.txt"
# hosts whose sources the export check overlays
EXPORT_HOSTS = ("recbole", "mmaction2", "salesforce-lavis")


class HostSourceUnavailable(RuntimeError):
    """The pinned sdist is neither cached nor downloadable (offline, registry down)."""


def cache_dir() -> Path:
    default = Path.home() / ".cache" / "plugzoo" / "export"
    return Path(os.environ.get("PLUGZOO_EXPORT_CACHE", default))


def _pin_lines(pin_file: Path) -> list[list[str]]:
    """The pins of each line of ``pin_file`` (``name==version``; comments dropped): a
    tool's first, then the packages installed beside it (its plugins)."""
    lines = [line.split("#", 1)[0].split() for line in pin_file.read_text().splitlines()]
    return [pins for pins in lines if pins]


def _pin(pin_file: Path, package: str) -> str:
    for pins in _pin_lines(pin_file):
        name, _, version = pins[0].partition("==")
        if name.strip().lower().replace("_", "-") == package.lower().replace("_", "-"):
            return version.strip()
    raise KeyError(f"{pin_file}: no '{package}==<version>' pin")


def host_version(package: str) -> str:
    """The version ``requirements/hosts.txt`` pins for ``package``."""
    return _pin(HOST_PINS, package)


def host_sdist(package: str, download: bool = True) -> Path:
    """The cached sdist of the pinned ``package``, downloaded with pip when missing.

    Raises:
        HostSourceUnavailable: not cached and pip could not download it.
    """
    version = host_version(package)
    folder = cache_dir() / "sdists"
    stems = {f"{package}-{version}", f"{package.replace('-', '_')}-{version}"}
    for stem in sorted(stems):
        if (folder / f"{stem}.tar.gz").is_file():
            return folder / f"{stem}.tar.gz"
    if not download:
        raise HostSourceUnavailable(f"{package}=={version}: no sdist in {folder}")
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as scratch:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        done = subprocess.run(
            [*command, "--quiet", "-d", scratch, f"{package}=={version}"],
            capture_output=True,
            text=True,
        )
        found = sorted(Path(scratch).glob("*.tar.gz"))
        if done.returncode or not found:
            raise HostSourceUnavailable(
                f"{package}=={version}: pip download --no-binary :all: failed: "
                f"{done.stderr.strip()[-500:]}"
            )
        target = folder / found[0].name
        shutil.move(str(found[0]), target)  # whole file or nothing: atomic within a folder
        return target


def extract_host(package: str, dest: Path) -> Path:
    """Extract the pinned sdist of ``package`` into ``dest``; returns its root folder."""
    archive = host_sdist(package)
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")
        top = {Path(member.name).parts[0] for member in tar.getmembers()}
    if len(top) != 1:
        raise ValueError(f"{archive}: expected one top-level folder, found {sorted(top)}")
    return Path(dest) / top.pop()


def formatter_names() -> list[str]:
    """Every tool ``requirements/export.txt`` pins, in its order."""
    return [pins[0].partition("==")[0] for pins in _pin_lines(EXPORT_PINS)]


def formatter_version(name: str) -> str:
    return _pin(EXPORT_PINS, name)


def formatter_path(name: str) -> Path:
    return cache_dir() / "tools" / f"{name}-{formatter_version(name)}"


def formatter_env(name: str) -> dict | None:
    """Environment for ``python -m <module>`` with the pinned tool ``name`` importable, or None
    when it is not installed (run ``python -m plugins.export.sources``)."""
    path = formatter_path(name)
    if not path.is_dir():  # written whole or not at all (install_formatter)
        return None
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(path), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def install_formatter(name: str) -> Path:
    path = formatter_path(name)
    if path.is_dir():
        return path
    scratch = Path(f"{path}.partial")
    shutil.rmtree(scratch, ignore_errors=True)
    # the tool's pin and the plugins pinned on its line
    pins = next(pins for pins in _pin_lines(EXPORT_PINS) if pins[0].partition("==")[0] == name)
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-warn-conflicts", "--target"]
        + [str(scratch), *pins],
        check=True,
    )
    scratch.rename(path)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Download the hosts' pinned sdists and install the export formatters "
        f"into {cache_dir()} (once; later calls reuse them)."
    )
    parser.parse_args(argv)
    for package in EXPORT_HOSTS:
        print(f"export cache: {host_sdist(package)}")
    for name in formatter_names():
        print(f"export cache: {install_formatter(name)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
