"""UPSR beside RecBole's own baselines, on the same split and seed, through RecBole's Trainer.

Used by ``tools/experiments/upsr/upsr_compare.py`` and the ``plugzoo demo`` stage. Runs, on
a dataset written from RecBole's bundled ML-100K:

- supervised: every requested model (UPSR, SASRec, BERT4Rec, and RecBole's Pop and ItemKNN
  as history-free anchors) trained and tested on the same leave-one-out split, full ranking,
  every model through the sequential test loader (RecBole does not mask a sequential user's
  seen items; the anchors are scored the same way); metrics, training time and each row's
  shuffled-history control (``recbole_ext.ranks.shuffled_history_control``);
- zero-shot: UPSR pre-trained on two ML-100K genre domains (``upsr_stage: pretrain``, with
  the same ``upsr_config`` recipe as the supervised rows) and tested on the third, whose
  items no pre-training data contains, without any training on it; beside SASRec and Pop
  trained on that third domain (each with its control) and the expected metrics of a random
  ranking, which is what an ID-based model pre-trained on the other domains can do there.

Every tested row keeps, per test user, the held-out item, its training interactions and its
rank with the user's own and with the borrowed score rows (``per_user``), so a subset such
as the cold items (``cold_items``) is scored afterwards without a model; and its per-epoch
curve (``curve``: training seconds, validation scores and the epochs they followed), from
which ``validation_curve`` and ``at_equal_training_time`` compare models at equal training
time.

With ``users`` and ``last`` unset, supervised runs use every ML-100K user and interaction
(no slice); set them for a seeded slice of users with their latest interactions (CPU
smoke runs, ``plugzoo demo``). ``max_item_list_length`` (RecBole's ``MAX_ITEM_LIST_LENGTH``)
is the same for every model and independent of the slice. UPSR reads extra keys from
``upsr_config`` (a RecBole yaml, e.g. ``configs/recbole/upsr_ml100k_cpu.yaml``).
Results, with the config of every run, are written after each row so a long run keeps
what it finished.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import multiprocessing
import os
import sys
import time
import unittest.mock
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

from recbole_ext.data.loaders import data_preparation
from recbole_ext.data.mix import mix_datasets
from recbole_ext.data.ml100k_domains import bundled_ml100k, write_genre_domains, write_user_slice
from recbole_ext.ranks import (
    rank_from_json,
    rank_metrics,
    rank_to_json,
    shuffled_history_control,
    target_ranks,
)

import numpy as np
import torch
import yaml

from plugins.benchmarking import git_commit, mean_std
from plugins.paths import CONFIG_DIR

UPSR_TEXT = CONFIG_DIR / "recbole" / "upsr_text.yaml"
# RecBole's defaults for the baselines, shrunk like configs/recbole/sasrec_ml100k.yaml
BASELINES = {
    "SASRec": {"hidden_size": 64, "inner_size": 256, "n_layers": 2, "n_heads": 2},
    "BERT4Rec": {"hidden_size": 64, "inner_size": 256, "n_layers": 2, "n_heads": 2},
    "Pop": {"epochs": 1},  # counting interactions once is all Pop learns
    "ItemKNN": {"epochs": 1, "k": 100, "shrink": 0.0},  # RecBole's ItemKNN defaults
}
# general (non-sequential) models: trained as RecBole trains them, tested on the sequential
# test loader so that they meet exactly the protocol of the sequential rows
ANCHORS = ("Pop", "ItemKNN")
# seeded shuffles of the shuffled-history control
CONTROL_SHUFFLES = 5
# a cold test target has at most this many training interactions (the tool's default)
COLD_ITEM_INTERACTIONS = 5


@dataclass
class CompareSettings:
    """What to run (every field is recorded with the results).

    ``users`` / ``last`` unset: every user and interaction. ``test_saved``: test the newest
    checkpoint each run folder holds instead of training (runs stopped by a deadline).
    ``baseline_epochs`` is the
    most epochs SASRec/BERT4Rec train; RecBole's early stopping (``stopping_step``) ends
    them at convergence. ``seeds``: one row per seed; ``upsr_seeds`` (default: ``seeds``)
    for UPSR alone. ``baseline_config``: a yaml ``{SASRec: {key: value}, BERT4Rec: ...}``
    whose keys win over the baselines' defaults (as ``upsr_config`` for UPSR). ``label``
    names the rows of this run (an ablation) beside the model, in results and summaries.
    ``jobs``: rows run in this many processes at once, the threads shared between them
    (results keep the table order; each row's ``threads`` and ``jobs`` say what it ran
    with: with ``jobs`` > 1 rows train at the same time on shared cores).
    ``test_users`` / ``valid_users``: every model is tested (validated) on this many seeded
    users, the same for every row (unset: all of them).
    """

    models: list[str] = field(default_factory=lambda: ["SASRec", "BERT4Rec", "UPSR"])
    users: int | None = 150
    last: int | None = 10
    max_item_list_length: int = 20
    epochs: int = 3
    baseline_epochs: int = 30
    stopping_step: int = 10
    seeds: list[int] = field(default_factory=lambda: [2020])
    upsr_seeds: list[int] | None = None
    backbone: str = "minilm"
    encoder_layers: int | None = 2
    decoder_layers: int = 1
    upsr_config: str | list[str] | None = None
    baseline_config: str | None = None
    label: str | None = None
    test_saved: bool = False
    zero_shot: bool = True
    jobs: int = 1
    target_domain: str = "drama"
    test_users: int | None = None
    valid_users: int | None = None


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except TypeError:
        return str(value)


def recbole_config(model, dataset, data_path, run_dir, overrides: dict, files=()):
    """The RecBole ``Config`` of every run of the comparison: leave-one-out by time, full
    ranking, Recall/NDCG/MRR at 10 and 20, ML-100K's columns, checkpoints in
    ``run_dir/saved``; ``overrides`` win. UPSR reads ``upsr_text.yaml`` first."""
    from recbole.config import Config

    settings = {
        "data_path": str(data_path),
        "checkpoint_dir": str(run_dir / "saved"),
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
        "metrics": ["Recall", "NDCG", "MRR"],
        "topk": [10, 20],
        "valid_metric": "NDCG@10",
        "show_progress": False,
        "load_col": {
            "inter": ["user_id", "item_id", "timestamp"],
            "item": ["item_id", "movie_title", "release_year", "class"],
        },
        **overrides,
    }
    if model not in ANCHORS:
        settings.update(loss_type="CE", train_neg_sample_args=None)
    files = ([str(UPSR_TEXT)] if model == "UPSR" else []) + [str(f) for f in files]
    with unittest.mock.patch.object(sys, "argv", sys.argv[:1]):
        return Config(model=model, dataset=dataset, config_file_list=files, config_dict=settings)


def _run(
    model: str,
    dataset: str,
    data_path: Path,
    run_dir: Path,
    overrides: dict,
    files=(),
    saved: str | None = None,
    test: bool = True,
):
    """Train (unless epochs is 0) and test one model; with ``saved``, only test that
    checkpoint (a run stopped before RecBole's fit returned: its best validated epoch);
    without ``test``, only train (no metrics, no control).

    Returns ``(test metrics, compute)``: ``compute`` has the train and test seconds, the
    epochs and training rows run, the per-epoch training loss and validation score, the
    threads and the load average, the checkpoint file, and the shuffled-history control of
    the test scores (``control``). An anchor (``ANCHORS``) trains as RecBole trains it and is
    tested on the sequential test loader of the same data (``_SequentialView``).
    """
    from recbole.data import create_dataset
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    # an anchor trains on the general split; the seeded user subsets apply to its sequential test
    general = {k: v for k, v in overrides.items() if k not in ("test_users", "valid_users")}
    config = recbole_config(
        model, dataset, data_path, run_dir, general if model in ANCHORS else overrides, files
    )
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(
        json.dumps({k: _jsonable(v) for k, v in config.final_config_dict.items()}, indent=1)
    )
    compute = {"threads": torch.get_num_threads(), "load_start": os.getloadavg()[0]}
    with contextlib.chdir(run_dir):  # RecBole writes log/ into the working directory
        init_seed(config["seed"], config["reproducibility"])
        init_logger(config)
        logging.getLogger().setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # RecBole 1.2.1's pandas notices
            data = create_dataset(config)
        train, valid, test_data = data_preparation(config, data)
        init_seed(config["seed"], config["reproducibility"])
        network = get_model(config["model"])(config, train._dataset).to(config["device"])
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, network)
        curve = {
            "train_loss": [],
            "valid_score": [],
            "valid_epochs": [],  # the epochs after which each validation ran (eval_step)
            "epoch_seconds": [],
            "valid_seconds": [],
        }
        progress = run_dir / "progress.json"
        _train_epoch, _valid_epoch = trainer._train_epoch, trainer._valid_epoch

        def train_epoch(*args, **kwargs):  # records the loss curve as RecBole trains
            begin = time.time()
            loss = _train_epoch(*args, **kwargs)
            curve["epoch_seconds"].append(round(time.time() - begin, 3))
            curve["train_loss"].append(round(float(loss) / max(len(train), 1), 5))
            progress.write_text(json.dumps(curve))
            return loss

        def valid_epoch(*args, **kwargs):
            begin = time.time()
            score, result = _valid_epoch(*args, **kwargs)
            curve["valid_seconds"].append(round(time.time() - begin, 3))
            curve["valid_score"].append(round(float(score), 5))
            curve["valid_epochs"].append(len(curve["epoch_seconds"]))
            progress.write_text(json.dumps(curve))
            return score, result

        trainer._train_epoch, trainer._valid_epoch = train_epoch, valid_epoch
        start = time.time()
        if config["epochs"] > 0 and not saved:
            trainer.fit(train, valid, verbose=False)
        elif saved and progress.exists():  # the curve the stopped run recorded
            curve = {**curve, **json.loads(progress.read_text())}
        train_seconds = time.time() - start
        start = time.time()
        load_best = bool(saved) or config["epochs"] > 0
        checkpoint = saved or trainer.saved_model_file
        if model in ANCHORS:  # the sequential rows' test loader, RecBole's own evaluation
            network, trainer, test_data = _sequential_view(
                network, data, dataset, data_path, run_dir, overrides
            )
            load_best = False
        result, recorded = {}, {"scores": []}
        if test:
            with _recording_test_scores(network, run_dir / "test_ranks.jsonl") as recorded:
                result = trainer.evaluate(test_data, load_best_model=load_best, model_file=saved)
        test_seconds = time.time() - start
    epochs = len(curve["train_loss"])
    if recorded["scores"]:
        targets = torch.cat(recorded["targets"])
        control = shuffled_history_control(
            torch.cat(recorded["scores"]), targets, CONTROL_SHUFFLES, keep_ranks=True
        )
        compute["per_user"] = _per_user_ranks(
            torch.cat(recorded["users"]),
            targets,
            control.pop("own_ranks"),
            control.pop("control_ranks"),
            test_data._dataset,
            train._dataset,
        )
        compute["control"] = control
    compute.update(
        epochs=epochs,
        prefixes_per_user=config["train_prefixes_per_user"],  # None: every prefix
        valid_users=config["valid_users"],  # None: every user validated
        training_rows=epochs * train.sample_size,
        train_seconds=round(train_seconds, 3),  # ms: a small test can take under 0.05 s
        test_seconds=round(test_seconds, 3),
        load_end=os.getloadavg()[0],
        checkpoint=checkpoint,
        curve=curve,
    )
    if hasattr(network, "text_names"):  # UPSR: the item and history constructions used
        compute["texts"] = list(network.text_names)
    return {k: float(v) for k, v in result.items()}, compute


def _run_in_process(threads: int, *args, **kwargs):
    """``_run`` in a worker process of ``jobs > 1``, with ``threads`` torch threads."""
    torch.set_num_threads(threads)
    return _run(*args, **kwargs)


@contextlib.contextmanager
def _recording_test_scores(network, path: Path):
    """Append each test user's rank of the held-out item to ``path`` as it is scored, and
    keep the score rows, users and held-out items (yielded as ``{"scores": [...], "users":
    [...], "targets": [...]}``) for the shuffled-history control.

    A full-sort test of a generative model can take an hour on a CPU; the ranks let a run
    that is stopped early still report metrics on the users it finished (and the
    baselines on the same users). Ranks as ``recbole_ext.ranks`` defines them (``null``:
    never ranked). Sequential test loaders only (one held-out item per test row).
    """
    recorded = {"scores": [], "users": [], "targets": []}
    full_sort_predict = network.full_sort_predict

    def logged(interaction):
        scores = full_sort_predict(interaction)
        target = interaction[network.POS_ITEM_ID]
        users = interaction[network.USER_ID].tolist()
        # a copy: RecBole then writes -inf into the padding column of the tensor it gets;
        # the copy ranks the same way, never counting the padding item above the target
        rows = scores.detach().float().view(len(users), -1).cpu().clone()
        rows[:, 0] = -math.inf
        recorded["scores"].append(rows)
        recorded["targets"].append(target.cpu())
        recorded["users"].append(interaction[network.USER_ID].cpu())
        with path.open("a") as out:
            for user, rank in zip(users, target_ranks(rows, target), strict=True):
                out.write(json.dumps({"user": user, "rank": rank_to_json(rank)}) + "\n")
        return scores

    path.unlink(missing_ok=True)
    network.full_sort_predict = logged
    try:
        yield recorded
    finally:
        del network.full_sort_predict  # the class's method again


def _rank_json(rank: float):
    """A rank as JSON: ``null`` when never ranked, an integer when whole (tied ranks are
    halves)."""
    return None if math.isinf(rank) else int(rank) if float(rank).is_integer() else rank


def _per_user_ranks(users, targets, own, borrowed, test_data, train_data) -> dict:
    """Per test user (columns of equal length): the user and held-out item tokens, the held-out
    item's training interactions, its rank with the user's own score row (``rank``) and with
    another user's row in each shuffle of the control (``control_ranks``, one list per
    shuffle). Ranks are ``mid_ranks`` (ties at their mean position), as the control's.

    Training interactions count every training-split interaction of the item (RecBole's
    ``inter_matrix``, which for a sequential dataset also counts each user's first item), by
    item token so that an anchor's general dataset and the sequential test agree.
    """
    iid = train_data.iid_field
    per_item = np.asarray(train_data.inter_matrix().sum(axis=0)).ravel()
    counts = dict(
        zip(train_data.id2token(iid, np.arange(len(per_item))), per_item.tolist(), strict=True)
    )
    items = test_data.id2token(test_data.iid_field, targets.numpy())
    return {
        "user": test_data.id2token(test_data.uid_field, users.numpy()).tolist(),
        "item": items.tolist(),
        "item_train_interactions": [int(counts.get(item, 0)) for item in items],
        "rank": [_rank_json(r) for r in own],
        "control_ranks": [[_rank_json(r) for r in ranks] for ranks in borrowed],
    }


def score_users(per_user: dict, keep, k: int = 10) -> dict:
    """Hits@k, NDCG@k and the shuffled-history control on the test users where ``keep`` is
    true, from a row's saved ``per_user`` ranks (no model run). The same definitions as
    ``recbole_ext.ranks.shuffled_history_control`` (ties at their mean rank, scored as one
    rank, not as the expected metrics over the tie-breaks; ``passes``: own
    NDCG@k above the shuffles' mean by more than twice their sample standard deviation), so
    with every user kept it gives the row's own control."""
    chosen = [i for i, flag in enumerate(keep) if flag]
    if not chosen:
        return {"users": 0}
    own = [rank_from_json(per_user["rank"][i]) for i in chosen]
    ndcg = rank_metrics(own, ks=(k,))[f"ndcg@{k}"]
    hits, ndcgs, better = [], [], []
    for shuffle in per_user["control_ranks"]:
        ranks = [rank_from_json(shuffle[i]) for i in chosen]
        hits.append(sum(r <= k for r in ranks))
        ndcgs.append(rank_metrics(ranks, ks=(k,))[f"ndcg@{k}"])
        better.append(
            sum((a < b) + 0.5 * (a == b) for a, b in zip(own, ranks, strict=True)) / len(own)
        )
    mean, spread = mean_std(ndcgs)
    return {
        "users": len(chosen),
        f"hits@{k}": sum(r <= k for r in own),
        f"ndcg@{k}": ndcg,
        f"control_hits@{k}": hits,
        f"control_ndcg@{k}": mean,
        f"control_ndcg@{k}_sd": spread,
        "own_row_better_share": sum(better) / len(better),
        "passes": ndcg > mean + 2 * spread,
    }


def cold_items(per_user: dict, threshold: int = COLD_ITEM_INTERACTIONS) -> dict:
    """``score_users`` on the test users whose held-out item has at most ``threshold``
    training interactions."""
    keep = [count <= threshold for count in per_user["item_train_interactions"]]
    return {"threshold": threshold, **score_users(per_user, keep)}


def validation_curve(row: dict) -> list[tuple[float, float]]:
    """A row's ``(cumulative training seconds, validation score)`` after each validation
    (validation seconds not counted); empty when it never validated. A curve saved without
    ``valid_epochs`` counts as validated after every epoch when it has a score per epoch."""
    curve = row.get("curve") or {}
    elapsed = [round(t, 3) for t in itertools.accumulate(curve.get("epoch_seconds", []))]
    scores = curve.get("valid_score", [])
    epochs = curve.get("valid_epochs")
    if not epochs:  # a curve recorded before valid_epochs
        if len(scores) != len(elapsed):
            return []  # validated less often than every epoch: when is not known
        epochs = range(1, len(scores) + 1)
    return [(elapsed[epoch - 1], score) for epoch, score in zip(epochs, scores, strict=True)]


def best_within(points: list[tuple[float, float]], seconds: float) -> float | None:
    """The best validation score a curve reached within ``seconds`` of training (what
    RecBole's best-epoch checkpoint holds if training stops then); None before its first
    validation."""
    reached = [score for elapsed, score in points if elapsed <= seconds]
    return max(reached) if reached else None


def at_equal_training_time(a: list, b: list) -> dict:
    """Two validation curves compared at equal training time: each one's best score within
    the other's training seconds at its last validation (the last point of its curve; the
    epochs trained after it are not on the curve), beside its own best."""
    a_last, b_last = a[-1][0], b[-1][0]
    return {
        "a_last_valid_seconds": a_last,
        "b_last_valid_seconds": b_last,
        "a_best": max(s for _, s in a),
        "b_best": max(s for _, s in b),
        "a_within_b_last_valid": best_within(a, b_last),
        "b_within_a_last_valid": best_within(b, a_last),
    }


def epoch_seconds_total(row: dict) -> float | None:
    """A row's training seconds over every epoch it trained (validation not counted); None
    when its curve has no epoch times."""
    seconds = (row.get("curve") or {}).get("epoch_seconds")
    return round(sum(seconds), 3) if seconds else None


# what two rows must share for their training seconds to compare: (row key, what it is)
EQUAL_TIME_CONDITIONS = (
    ("valid_users", "validation users"),
    ("threads", "threads"),
    ("jobs", "rows run at once (jobs)"),
)


def equal_time_caveats(a: dict, b: dict) -> list[str]:
    """Why the training seconds of rows ``a`` and ``b`` do not compare: validation users,
    threads or concurrent rows (``jobs``) that differ or were not recorded; empty when they
    compare."""
    reasons = []
    for key, what in EQUAL_TIME_CONDITIONS:
        if key not in a or key not in b:
            reasons.append(f"{what} not recorded")
        elif a[key] != b[key]:
            shown = ["all" if row[key] is None else str(row[key]) for row in (a, b)]
            reasons.append(f"{what} differ ({' / '.join(shown)})")
    return reasons


class _SequentialView(torch.nn.Module):
    """A trained general RecBole model (an anchor) answering a sequential test loader: each
    batch's users are looked up in the general dataset by token and the scores returned in
    the sequential dataset's item order, so RecBole's ``Trainer.evaluate`` scores the anchor
    exactly as it scores SASRec (no masking of seen items, same users and held-out items)."""

    def __init__(self, model, general, sequential, config):
        super().__init__()
        self.model = model
        self.USER_ID, self.POS_ITEM_ID = config["USER_ID_FIELD"], config["ITEM_ID_FIELD"]
        users = sequential.id2token(self.USER_ID, range(sequential.user_num))[1:]
        items = sequential.id2token(self.POS_ITEM_ID, range(sequential.item_num))[1:]
        self.register_buffer("user_ids", torch.zeros(sequential.user_num, dtype=torch.long))
        self.register_buffer("item_ids", torch.zeros(sequential.item_num, dtype=torch.long))
        self.user_ids[1:] = torch.as_tensor(general.token2id(self.USER_ID, users))
        self.item_ids[1:] = torch.as_tensor(general.token2id(self.POS_ITEM_ID, items))

    def full_sort_predict(self, interaction):
        from recbole.data.interaction import Interaction

        users = self.user_ids[interaction[self.USER_ID]]
        scores = self.model.full_sort_predict(Interaction({self.USER_ID: users}))
        return scores.view(len(users), -1)[:, self.item_ids]  # padding column: any score


def _sequential_view(network, general, dataset, data_path, run_dir, overrides):
    """The anchor ``network`` trained on ``general``, wrapped for the sequential test loader
    of ``dataset`` (built as SASRec's, with the comparison's common keys); returns
    ``(view, trainer, test loader)``."""
    from recbole.data import create_dataset
    from recbole.trainer import Trainer

    common = ("MAX_ITEM_LIST_LENGTH", "seed", "test_users", "valid_users")
    config = recbole_config(
        "SASRec", dataset, data_path, run_dir, {k: overrides[k] for k in common if k in overrides}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        sequential = create_dataset(config)
    _, _, test = data_preparation(config, sequential)
    view = _SequentialView(network, general, sequential, config).to(config["device"])
    return view, Trainer(config, view), test


def _compute_columns(model: str, overrides: dict, compute: dict) -> dict:
    """The compute budget of a row, next to its metrics."""
    if model == "UPSR" and overrides.get("plm_architecture") == "unilm":
        layers = f"{overrides['plm_encoder_layers'] or 6} (one stack)"
        budget = overrides.get("history_token_budget", "512")
    elif model == "UPSR":
        layers = f"{overrides['plm_encoder_layers'] or 6}+{overrides['plm_decoder_layers']}"
        budget = overrides.get("history_token_budget", "512")
    else:
        layers, budget = overrides.get("n_layers", "-"), "-"
    return {"layers": layers, "token_budget": budget, **compute}


METRICS = tuple(f"{m}@{k}" for k in (10, 20) for m in ("recall", "ndcg", "mrr"))


def summarise(rows: list[dict]) -> list[dict]:
    """One row per model over its seeds: each metric as mean, sample standard deviation
    (n - 1; 0 for one seed), min and max, and the compute of the seeds (mean, per-seed
    epochs). Rows of one model must share every setting but the seed."""
    import numpy as np

    out = []
    names = [r["model"] + (f" ({r['label']})" if r.get("label") else "") for r in rows]
    for model in dict.fromkeys(names):
        runs = [r for r, name in zip(rows, names, strict=True) if name == model]
        summary = {"model": model, "seeds": [r["seed"] for r in runs]}
        for metric in METRICS:
            values = [float(r[metric]) for r in runs]
            mean, std = mean_std(values)
            summary[metric] = {"mean": mean, "std": std, "min": min(values), "max": max(values)}
        for key in ("layers", "token_budget", "threads"):
            summary[key] = sorted({str(r.get(key)) for r in runs})
        summary["epochs"] = [r.get("epochs") for r in runs]
        controls = [r["control"] for r in runs if r.get("control")]
        if controls:  # the shuffled-history control, per seed
            mean, std = mean_std([c["control_ndcg@10"] for c in controls])
            summary["control"] = {
                "control_ndcg@10": {"mean": mean, "std": std},
                "row_correlation": float(np.mean([c["row_correlation"] for c in controls])),
                "own_row_better_share": float(
                    np.mean([c["own_row_better_share"] for c in controls])
                ),
                "passes": [bool(c["passes"]) for c in controls],
            }
        for key in ("training_rows", "train_seconds", "test_seconds", "load_start", "load_end"):
            values = [r[key] for r in runs if r.get(key) is not None]
            summary[key] = float(np.mean(values)) if values else None
        out.append(summary)
    return out


def with_control_columns(row: dict) -> dict:
    """A result row with its shuffled-history control's headline numbers as flat columns
    (for tables), instead of the nested ``control`` record, and without its per-user ranks
    and curve."""
    control = row.get("control")
    # the per-user ranks and the curve are data for later scoring, not table columns
    row = {k: v for k, v in row.items() if k not in ("control", "per_user", "curve")}
    if control:
        row["control_hits@10"] = control["control_hits@10"]
        row["control_ndcg@10"] = control["control_ndcg@10"]
        row["row_correlation"] = round(control["row_correlation"], 3)
        row["uses_history"] = control["passes"]
    return row


def upsr_overrides(settings: CompareSettings) -> dict:
    """UPSR's config keys in every run of the comparison (over ``upsr_text.yaml``).

    The text domains of ``upsr_text.yaml`` stay on: without them domain consistency is
    undefined and pre-training would choose the fine-tuning texts. The sentence-embedding
    part of domain consistency is off (``text_consistency_embedder: none``) to keep the
    model's start-up short; the other three parts of the indicator remain.
    """
    upsr = {
        "plm_backbone": settings.backbone,
        "plm_encoder_layers": settings.encoder_layers,
        "plm_decoder_layers": settings.decoder_layers,
        "text_consistency_embedder": "none",
        "epochs": settings.epochs,
        "eval_step": settings.epochs,  # one validation: full-sort UPSR is the slow part
        "train_batch_size": 32,
        "eval_batch_size": 16,
        "learning_rate": 1e-4,
    }
    files = settings.upsr_config or []
    for file in [files] if isinstance(files, str) else files:  # later files win, all over these
        upsr.update(yaml.safe_load(Path(file).read_text()) or {})
    return upsr


def random_ranking(items: int, ks=(10, 20)) -> dict:
    """Expected Recall / NDCG / MRR @K of a ranking drawn uniformly at random over ``items``
    items: what an ID-based model (SASRec) pre-trained on other domains does on a target
    whose items it never saw (their embeddings are untrained, their order arbitrary)."""
    out = {}
    for k in ks:
        top = range(1, min(k, items) + 1)
        out[f"recall@{k}"] = len(top) / items
        out[f"ndcg@{k}"] = sum(1 / math.log2(r + 1) for r in top) / items
        out[f"mrr@{k}"] = sum(1 / r for r in top) / items
    return out


def run_comparison(settings: CompareSettings, run_dir: Path, log=print) -> dict:
    """Run the comparison; returns ``{"settings", "data", "supervised", "zero_shot"}``.

    ``run_dir/results.json`` is rewritten after every row; each run's folder holds its
    RecBole config (``config.json``) and loss / validation curve (``progress.json``).
    """
    run_dir = Path(run_dir).resolve()  # each run changes into its own folder
    data = run_dir / "data"
    dataset = "ml100k-full" if settings.users is None and settings.last is None else "ml100k-slice"
    data_info = write_user_slice(
        bundled_ml100k(), data, dataset, settings.users, settings.last, settings.seeds[0]
    )
    log(f"upsr-compare: {data_info}")
    common = {"MAX_ITEM_LIST_LENGTH": settings.max_item_list_length}
    for key in ("test_users", "valid_users"):  # the same seeded users for every row
        if getattr(settings, key) is not None:
            common[key] = getattr(settings, key)
    upsr = upsr_overrides(settings)
    baselines = {
        model: {
            **BASELINES[model],
            "epochs": settings.baseline_epochs,
            "stopping_step": settings.stopping_step,
            "train_batch_size": 256,
            "learning_rate": 1e-3,
        }
        for model in ("SASRec", "BERT4Rec")
    }
    for model in ANCHORS:
        baselines[model] = dict(BASELINES[model])
    if settings.baseline_config:  # per model, the file's keys win
        spec = yaml.safe_load(Path(settings.baseline_config).read_text()) or {}
        unknown = set(spec) - set(baselines)
        if unknown or not all(isinstance(v, dict) for v in spec.values()):
            raise ValueError(
                f"{settings.baseline_config}: expected {{model: {{key: value}}}} with models "
                f"among {sorted(baselines)}, got {sorted(spec)}"
            )
        for model, keys in spec.items():
            baselines[model].update(keys)
    out = {
        "settings": asdict(settings),
        "measured": {
            "started_utc": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
            "commit": git_commit(),
        },
        "data": data_info,
        "supervised": [],
        "zero_shot": [],
    }

    def save():
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "results.json").write_text(json.dumps(out, indent=1))

    rows = []  # (model, seed, run folder, overrides, saved checkpoint) in table order
    for model in settings.models:
        seeds = settings.seeds if model != "UPSR" else settings.upsr_seeds or settings.seeds
        for seed in seeds:
            overrides = {**common, "seed": seed, **(upsr if model == "UPSR" else baselines[model])}
            name = model if len(seeds) == 1 else f"{model}-seed{seed}"
            saved = None
            if settings.test_saved:  # test what a stopped run saved instead of training
                found = sorted((run_dir / name / "saved").glob("*.pth"))
                if not found:
                    raise FileNotFoundError(f"--test-saved: no checkpoint in {run_dir / name}")
                saved = str(found[-1])
            rows.append((model, seed, run_dir / name, overrides, saved))

    def finished(index, result, compute):
        model, seed, _, overrides, saved = rows[index]
        row = {"model": model, "label": settings.label, "seed": seed, "jobs": settings.jobs}
        row.update(result)
        if saved:
            row["stopped_before_fit_returned"] = True
            compute.pop("train_seconds")  # the stopped run's time is in its log
        row.update(_compute_columns(model, overrides, compute))
        done[index] = row
        out["supervised"] = [done[i] for i in sorted(done)]  # table order, whatever finished
        save()
        log(f"  {row}")

    done: dict[int, dict] = {}
    if settings.jobs < 1:
        raise ValueError(f"jobs: expected a positive integer, got {settings.jobs}")
    if settings.jobs == 1:
        for index, (model, seed, folder, overrides, saved) in enumerate(rows):
            log(f"upsr-compare: {model} seed {seed} on {dataset}")
            finished(index, *_run(model, dataset, data, folder, overrides, saved=saved))
    else:  # one process a row, each with its share of the threads
        threads = max(1, torch.get_num_threads() // settings.jobs)
        context = multiprocessing.get_context("spawn")  # no forked OpenMP or torch state
        with ProcessPoolExecutor(settings.jobs, mp_context=context) as pool:
            futures = {}
            # the slowest rows first (UPSR's full-sort test), so no core idles at the end
            order = sorted(range(len(rows)), key=lambda i: rows[i][0] != "UPSR")
            for index in order:
                model, seed, folder, overrides, saved = rows[index]
                log(
                    f"upsr-compare: {model} seed {seed} on {dataset} (a process, {threads} threads)"
                )
                job = pool.submit(
                    _run_in_process, threads, model, dataset, data, folder, overrides, saved=saved
                )
                futures[job] = index
            for job in as_completed(futures):
                finished(futures[job], *job.result())
    if not settings.zero_shot:
        return out

    seed = settings.seeds[0]
    common["seed"] = seed
    domains = write_genre_domains(data)
    sources = [d for d in domains if d not in ("unassigned", settings.target_domain)]
    for name in sources:
        write_user_slice(
            data / f"ml-100k-{name}", data, f"{name}-slice", settings.users, settings.last, seed
        )
    target = f"{settings.target_domain}-slice"
    target_info = write_user_slice(
        data / f"ml-100k-{settings.target_domain}",
        data,
        target,
        settings.users,
        settings.last,
        seed,
    )
    mixed = mix_datasets(
        [data / f"{d}-slice" for d in sources], data, "source-slice", keep_ids=True
    )
    log(
        f"upsr-compare: pre-training on {sources} ({mixed['total']}), "
        f"zero-shot on {settings.target_domain}"
    )
    _, pretrain = _run(
        "UPSR",
        "source-slice",
        data,
        run_dir / "pretrain",
        {**common, **upsr, "upsr_stage": "pretrain"},
        test=False,  # only the target is tested
    )
    # zero-shot: no fine-tuning, so the target is written the way the model was pre-trained
    item_text, history_text = pretrain["texts"]
    zero, zero_compute = _run(
        "UPSR",
        target,
        data,
        run_dir / "zero-shot",
        {
            **common,
            **upsr,
            "epochs": 0,
            "upsr_init_checkpoint": pretrain["checkpoint"],
            "upsr_stage": "pretrain",
            "upsr_item_text": item_text,
            "upsr_history_text": history_text,
        },
    )
    # the same target data for the rows trained on it: Pop, and SASRec as the in-domain reference
    pop, pop_compute = _run("Pop", target, data, run_dir / "pop", {**common, **baselines["Pop"]})
    sasrec, sasrec_compute = _run(
        "SASRec", target, data, run_dir / "sasrec-target", {**common, **baselines["SASRec"]}
    )
    out["zero_shot_data"] = {"sources": sources, "pretrain": mixed, "target": target_info}
    out["zero_shot"] = [
        {
            "model": "UPSR zero-shot (pre-trained on " + "+".join(sources) + ")",
            "dataset": target,
            **zero,
            **_compute_columns("UPSR", upsr, zero_compute),
            # its training is the pre-training, validated on the source domains
            "train_seconds": pretrain["train_seconds"],
            "epochs": pretrain["epochs"],
            "training_rows": pretrain["training_rows"],
            "pretrain_curve": pretrain["curve"],
        },
        {
            "model": "SASRec (trained on the target)",
            "dataset": target,
            **sasrec,
            **_compute_columns("SASRec", baselines["SASRec"], sasrec_compute),
        },
        {
            "model": "Pop (trained on the target)",
            "dataset": target,
            **pop,
            **_compute_columns("Pop", baselines["Pop"], pop_compute),
        },
        {
            "model": "random ranking (an ID model not trained on the target)",
            "dataset": target,
            **random_ranking(target_info["items"]),
            "train_seconds": 0.0,
        },
    ]
    save()
    for row in out["zero_shot"]:
        log(f"  {row}")
    return out
