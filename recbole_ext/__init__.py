"""plugzoo's RecBole extension.

Importing this package makes RecBole 1.2.1 work on the pinned stack (NumPy 2, torch >= 2.6
checkpoints) and lets RecBole's name lookup find the models registered here.
"""

from plugins.compat import apply_host_fixes

apply_host_fixes("recbole")

from recbole_ext.model import UPSR  # noqa: E402  (registers the model; fixes come first)

__all__ = ["UPSR"]
