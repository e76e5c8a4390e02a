"""MMAction2 1.2.0's wheel omits a module its own package imports."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

_DRN_PACKAGE = "mmaction.models.localizers.drn"
_DRN_MODULE = _DRN_PACKAGE + ".drn"


class DRN:
    """Stands in for MMAction2's DRN localizer, which the 1.2.0 wheel does not ship.

    Not registered in MMAction2's MODELS: a config asking for ``type='DRN'`` still fails in
    the registry, and direct use fails here with the reason.
    """

    def __init__(self, *args, **kwargs):
        raise ImportError(
            "DRN is not available: the mmaction2 1.2.0 wheel does not ship "
            "mmaction/models/localizers/drn/ (open-mmlab/mmaction2#2714). Install mmaction2 "
            "from a source checkout to use DRN."
        )


def provide_missing_drn_module() -> bool:
    """Make ``import mmaction.models`` work on the mmaction2 1.2.0 wheel.

    Upstream: open-mmlab/mmaction2#2714. ``mmaction/models/localizers/__init__.py`` runs
    ``from .drn.drn import DRN`` but the wheel lacks ``localizers/drn/``, so importing
    ``mmaction.models`` (and every recognizer) raises ``ModuleNotFoundError``. Pre-seeding
    ``sys.modules`` with a module whose ``DRN`` explains the gap lets every other model
    import. Does nothing where the real module exists (a source install).

    Returns:
        True if the stand-in was installed by this call.
    """
    if _DRN_MODULE in sys.modules:
        return False
    spec = importlib.util.find_spec("mmaction")  # imports only the top-level package
    if spec is None or spec.submodule_search_locations is None:
        return False  # MMAction2 is not installed: nothing to fix
    root = Path(next(iter(spec.submodule_search_locations)))
    if (root / "models" / "localizers" / "drn" / "drn.py").is_file():
        return False  # a source install that has the real DRN
    package = types.ModuleType(_DRN_PACKAGE)
    package.__path__ = []  # a package, so that `.drn.drn` resolves
    module = types.ModuleType(_DRN_MODULE)
    module.DRN = DRN
    package.drn = module
    sys.modules[_DRN_PACKAGE] = package
    sys.modules[_DRN_MODULE] = module
    return True


def name_videos_in_decode_errors() -> bool:
    """Make a corrupt, truncated or non-video file fail with its path in the message.

    Upstream: MMAction2's ``DecordInit`` hands decord an in-memory copy of the file, so a
    bad video fails with decord's "Error reading 670 bytes..." and no file name; with
    thousands of clips the user cannot tell which one. ``DecordInit``, ``DecordDecode``,
    ``PyAVInit`` and ``PyAVDecode`` are wrapped to re-raise as ``RuntimeError`` naming
    the file (a missing file keeps its ``FileNotFoundError``). Nothing is skipped: the
    error still stops the run, as MMAction2's datasets do for any failing transform.

    Returns:
        True if applied by this call.
    """
    from mmaction.datasets.transforms import loading

    applied = False
    for name in ("DecordInit", "DecordDecode", "PyAVInit", "PyAVDecode"):
        transform_class = getattr(loading, name)
        if getattr(transform_class.transform, "_plugzoo_names_video", False):
            continue
        transform_class.transform = _naming_video(transform_class.transform, name)
        applied = True
    return applied


def _naming_video(transform, transform_name: str):
    import functools

    @functools.wraps(transform)
    def named(self, results):
        try:
            return transform(self, results)
        except FileNotFoundError:
            raise
        except Exception as error:
            filename = results.get("filename", "<unknown file>")
            raise RuntimeError(
                f"{filename}: {transform_name} could not read this video "
                f"({type(error).__name__}: {str(error)[:200]}); it is corrupt, truncated or "
                "not a video"
            ) from error

    named._plugzoo_names_video = True
    return named
