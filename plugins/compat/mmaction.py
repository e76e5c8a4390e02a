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
