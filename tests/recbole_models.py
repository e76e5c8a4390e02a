"""A RecBole model defined outside RecBole, for the model-lookup tests."""

from pathlib import Path

import recbole_ext  # noqa: F401  (host fixes)

import recbole
from recbole.model.sequential_recommender.sasrec import SASRec

from plugins.compat import register_recbole_model

SASREC_DEFAULTS = Path(recbole.__file__).parent / "properties" / "model" / "SASRec.yaml"


@register_recbole_model(default_config=SASREC_DEFAULTS)
class PlugzooTinySASRec(SASRec):
    """SASRec under another name: only its name is outside RecBole's modules."""
