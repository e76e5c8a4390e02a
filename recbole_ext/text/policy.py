"""Stage policy: which constructions pre-training and fine-tuning use, from the indicators.

The rule (``text_stage_policy`` in RecBole yaml, one entry per stage):

1. Drop candidates over the stage's length budget: item constructions whose 95th-percentile
   item text exceeds ``max_item_tokens``; history constructions whose 95th-percentile
   history exceeds ``history_token_budget`` before truncation would have to cut more than
   ``max_truncated_share`` of the histories.
2. Score the rest: the weighted mean of the indicator scores, with noise & ambiguity counted
   as ``1 - value`` and text length as ``1 - mean tokens / budget``. An indicator that is
   undefined (domain consistency with one domain) leaves the mean with its weight.
3. Pick the highest score; ties go to the shorter mean length, then to the name.

The defaults follow the paper's direction: pre-training weights naturalness and domain
consistency most, fine-tuning informativeness and low noise & ambiguity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

INDICATORS = (
    "naturalness",
    "domain_consistency",
    "informativeness",
    "noise_ambiguity",
    "text_length",
)
STAGES = ("pretrain", "finetune")


@dataclass
class StagePolicy:
    """Weights of the five indicators and the length budget of one stage.

    Args:
        stage: ``pretrain`` or ``finetune``.
        weights: ``{indicator: weight}`` over :data:`INDICATORS` (missing = 0).
        max_item_tokens: Length budget of one item text, in tokens.
        max_truncated_share: Largest share of histories a history construction may cut.
    """

    stage: str
    weights: dict[str, float] = field(default_factory=dict)
    max_item_tokens: int = 32
    max_truncated_share: float = 0.5

    @classmethod
    def from_dict(cls, stage: str, spec: dict) -> StagePolicy:
        where = f"text_stage_policy.{stage}"
        unknown = set(spec) - {"weights", "max_item_tokens", "max_truncated_share"}
        if unknown:
            raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
        weights = dict(spec.get("weights") or {})
        bad = [k for k in weights if k not in INDICATORS]
        if bad:
            raise ValueError(f"{where}.weights: unknown indicators {bad}; known: {INDICATORS}")
        if any(not isinstance(w, (int, float)) or w < 0 for w in weights.values()):
            raise ValueError(f"{where}.weights: weights must be non-negative numbers")
        if not sum(weights.values()):
            raise ValueError(f"{where}.weights: at least one weight must be positive")
        max_item_tokens = spec.get("max_item_tokens", 32)
        if not isinstance(max_item_tokens, int) or max_item_tokens < 1:
            raise ValueError(f"{where}.max_item_tokens: expected a positive integer")
        return cls(stage, weights, max_item_tokens, float(spec.get("max_truncated_share", 0.5)))


def policies_from_config(config) -> dict[str, StagePolicy]:
    try:
        spec = config["text_stage_policy"]
    except KeyError:
        spec = None
    if not spec:
        raise ValueError("text_stage_policy: give weights for the stages 'pretrain' and 'finetune'")
    missing = [s for s in STAGES if s not in spec]
    if missing:
        raise ValueError(f"text_stage_policy: stages {missing} missing")
    return {s: StagePolicy.from_dict(s, spec[s]) for s in STAGES}


def goodness(indicators: dict, length_budget: float) -> dict[str, float | None]:
    """Indicator values turned into [0, 1] scores where higher is better."""
    return {
        "naturalness": indicators["naturalness"]["score"],
        "domain_consistency": indicators["domain_consistency"],
        "informativeness": indicators["informativeness"]["score"],
        "noise_ambiguity": 1.0 - indicators["noise_ambiguity"]["value"],
        "text_length": max(0.0, 1.0 - indicators["text_length"]["mean"] / length_budget),
    }


def weighted_score(scores: dict[str, float | None], weights: dict[str, float]) -> float:
    used = {k: w for k, w in weights.items() if scores.get(k) is not None and w > 0}
    total = sum(used.values())
    return sum(scores[k] * w for k, w in used.items()) / total if total else 0.0


def choose(candidates: list[dict], weights: dict[str, float], budget: float) -> dict:
    """Apply the rule to ``candidates`` (each with ``name``, ``indicators``, ``eligible``).

    Adds ``score`` to every candidate and returns the chosen one. Raises ``ValueError`` when
    every candidate is over budget.
    """
    for candidate in candidates:
        candidate["score"] = weighted_score(goodness(candidate["indicators"], budget), weights)
    eligible = [c for c in candidates if c["eligible"]]
    if not eligible:
        raise ValueError(
            "text_stage_policy: every candidate construction is over the stage's length "
            f"budget ({budget} tokens): {[c['name'] for c in candidates]}"
        )
    return min(
        eligible,
        key=lambda c: (-round(c["score"], 9), c["indicators"]["text_length"]["mean"], c["name"]),
    )
