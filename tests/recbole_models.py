"""A RecBole model defined outside RecBole, for the model-lookup tests."""

import recbole_ext  # noqa: F401  (host fixes)
from plugins.compat import register_recbole_model
from recbole.model.sequential_recommender.sasrec import SASRec


@register_recbole_model
class PlugzooTinySASRec(SASRec):
    """SASRec under another name: only its name is outside RecBole's modules."""
