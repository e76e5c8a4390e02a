"""RecBole models added by plugzoo."""

from recbole_ext.model.upsr import UPSR
from recbole_ext.trainer import UPSRTrainer

__all__ = ["UPSR", "UPSRTrainer"]
