"""plugzoo's RecBole extension.

Importing this package makes RecBole 1.2.1 work on the pinned stack (NumPy 2, torch >= 2.6
checkpoints) and lets RecBole's name lookup find the models registered here. The
registration lives here, not in the model files, so those files depend on RecBole, torch
and their declared packages only and can be contributed to RecBole as they are
(``plugzoo export upsr``; docs/upstreaming.md).
"""

from pathlib import Path

from plugins.compat import apply_host_fixes

apply_host_fixes("recbole")

from recbole_ext.model import UPSR, UPSRTrainer  # noqa: E402  (fixes come first)

from plugins.compat import register_recbole_model, register_recbole_trainer  # noqa: E402
from plugins.compat.checkpoints import load_recbole_checkpoint  # noqa: E402

register_recbole_model(
    UPSR, default_config=Path(__file__).resolve().parent / "properties" / "model" / "UPSR.yaml"
)
register_recbole_trainer(UPSRTrainer)
# RecBole checkpoints hold its Config: read them with weights_only=True and RecBole's
# allow-list (plain torch.load refuses them under torch >= 2.6)
UPSR.checkpoint_loader = staticmethod(load_recbole_checkpoint)

__all__ = ["UPSR", "UPSRTrainer"]
