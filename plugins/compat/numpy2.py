"""NumPy 2 removed aliases that RecBole 1.2.1 and ray 2.6.3 still use."""

from __future__ import annotations

import numpy as np

# alias -> the NumPy 1.x object it named
_REMOVED_ALIASES = {
    "float_": np.float64,
    "complex_": np.complex128,
    "unicode_": np.str_,
    "bool8": np.bool_,
}


def restore_numpy_aliases() -> bool:
    """Restore ``np.float_``, ``np.complex_``, ``np.unicode_`` and ``np.bool8``.

    Upstream: RUCAIBox/RecBole PR #2203 ("Fix numpy 2 compat", unreleased in 1.2.1):
    ``recbole.config.configurator`` fails with "np.float_ was removed in the NumPy 2.0
    release"; ray 2.6.3 (imported by
    ``recbole.quick_start``) uses ``np.bool8``, fixed upstream in ray >= 2.10. Both fail
    with ``AttributeError`` under NumPy 2. Must run before RecBole or ray is imported.

    Returns:
        True if this call added any alias.
    """
    added = False
    for alias, target in _REMOVED_ALIASES.items():
        if alias not in np.__dict__:
            setattr(np, alias, target)
            added = True
    return added
