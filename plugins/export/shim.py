"""Test-only environment shim for running an exported tree; NOT part of any contribution.

The export never writes this file into a host tree. The host-pattern tests run it by path
(``python shim.py SCRIPT ARGS...``) in a fresh interpreter, so that the exported tree is
checked the way a host's CI would run it, with two differences stated here:

- plugzoo's packages cannot be imported (an import of ``plugins``, ``recbole_ext``,
  ``mmaction_ext`` or ``retrieval_ext`` raises), so anything exported that still needs
  plugzoo fails loudly;
- the pinned stack's environment defects that are no part of a model contribution are
  repaired: RecBole 1.2.1 and ray 2.6.3 use NumPy aliases that NumPy 2 removed (RecBole
  fixed it upstream after 1.2.1), and MMAction2 1.2.0's wheel and sdist lack the DRN
  localizer module its own ``mmaction.models`` imports (open-mmlab/mmaction2#2714).

It imports nothing from plugzoo.
"""

import importlib.abc
import importlib.util
import os
import runpy
import sys
import types

# run by path, Python put this folder first on sys.path: its recbole.py would shadow the host
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != HERE]

import numpy as np  # noqa: E402  (after the path fix)

BLOCKED = ("plugins", "recbole_ext", "mmaction_ext", "retrieval_ext")
NUMPY_ALIASES = {"float_": np.float64, "complex_": np.complex128, "unicode_": np.str_}
NUMPY_ALIASES["bool8"] = np.bool_


class BlockPlugzoo(importlib.abc.MetaPathFinder):
    """Refuses plugzoo's packages, whatever sys.path holds."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname.split(".")[0] in BLOCKED:
            raise ImportError(f"{fullname}: plugzoo is not importable in an exported tree")
        return None


def _missing_drn() -> None:
    """A stand-in ``mmaction.models.localizers.drn.drn`` where MMAction2 lacks it."""
    spec = importlib.util.find_spec("mmaction")
    if spec is None or not spec.submodule_search_locations:
        return
    root = next(iter(spec.submodule_search_locations))
    if os.path.isfile(os.path.join(root, "models", "localizers", "drn", "drn.py")):
        return
    package = types.ModuleType("mmaction.models.localizers.drn")
    package.__path__ = []
    module = types.ModuleType("mmaction.models.localizers.drn.drn")
    module.DRN = type("DRN", (), {})  # never registered: a config asking for DRN still fails
    package.drn = module
    sys.modules[package.__name__] = package
    sys.modules[module.__name__] = module


def install() -> None:
    sys.meta_path.insert(0, BlockPlugzoo())
    for alias, value in NUMPY_ALIASES.items():
        if alias not in np.__dict__:
            setattr(np, alias, value)
    _missing_drn()


if __name__ == "__main__":
    install()
    script, sys.argv = sys.argv[1], sys.argv[1:]
    if script == "-m":  # python shim.py -m module args...
        module, sys.argv = sys.argv[1], sys.argv[1:]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    else:
        runpy.run_path(script, run_name="__main__")
