"""RecBole models added by plugzoo."""

from recbole_ext.model.upsr import UPSR

__all__ = ["UPSR"]
