"""UPSR beside RecBole's own baselines, on the same split and seed, through RecBole's Trainer.

Used by ``tools/upsr_compare.py`` and the ``plugzoo demo`` stage. Runs, on a dataset
written from RecBole's bundled ML-100K:

- supervised: every requested model (UPSR, SASRec, BERT4Rec, Pop) trained and tested on
  the same leave-one-out split, full ranking; metrics and training time;
- zero-shot: UPSR pre-trained on two ML-100K genre domains (``upsr_stage: pretrain``)
  and tested on the third, whose items no pre-training data contains, without any
  training on it; beside Pop trained on that third domain.

A CPU cannot train a PLM on all of ML-100K in minutes (see README "UPSR model"), so by
default both settings use a seeded slice of users with their latest interactions
(``users``, ``last``); the result JSON and the report say so.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import unittest.mock
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path

from recbole_ext.data.mix import mix_datasets
from recbole_ext.data.ml100k_domains import bundled_ml100k, write_genre_domains, write_user_slice

from plugins.paths import CONFIG_DIR

UPSR_TEXT = CONFIG_DIR / "recbole" / "upsr_text.yaml"
# RecBole's defaults for the baselines, shrunk like configs/recbole/sasrec_ml100k.yaml
BASELINES = {
    "SASRec": {"hidden_size": 64, "inner_size": 256, "n_layers": 2, "n_heads": 2},
    "BERT4Rec": {"hidden_size": 64, "inner_size": 256, "n_layers": 2, "n_heads": 2},
    "Pop": {"epochs": 1},  # counting interactions once is all Pop learns
}


@dataclass
class CompareSettings:
    """What to run (every field is recorded with the results)."""

    models: list[str] = field(default_factory=lambda: ["SASRec", "BERT4Rec", "UPSR"])
    users: int = 150
    last: int = 10
    epochs: int = 3
    baseline_epochs: int = 30
    seed: int = 2020
    backbone: str = "minilm"
    encoder_layers: int | None = 2
    decoder_layers: int = 1
    zero_shot: bool = True
    target_domain: str = "drama"


def _run(model: str, dataset: str, data_path: Path, run_dir: Path, overrides: dict):
    """Train (unless epochs is 0) and test one model; returns (test metrics, seconds, file)."""
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    settings = {
        "data_path": str(data_path),
        "checkpoint_dir": str(run_dir / "saved"),
        "eval_args": {"split": {"LS": "valid_and_test"}, "order": "TO", "mode": "full"},
        "metrics": ["Recall", "NDCG", "MRR"],
        "topk": [10],
        "valid_metric": "NDCG@10",
        "show_progress": False,
        "load_col": {
            "inter": ["user_id", "item_id", "timestamp"],
            "item": ["item_id", "movie_title", "release_year", "class"],
        },
        **overrides,
    }
    if model != "Pop":
        settings.update(loss_type="CE", train_neg_sample_args=None)
    files = [str(UPSR_TEXT)] if model == "UPSR" else []
    with unittest.mock.patch.object(sys, "argv", sys.argv[:1]):
        config = Config(model=model, dataset=dataset, config_file_list=files, config_dict=settings)
    run_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(run_dir):  # RecBole writes log/ into the working directory
        init_seed(config["seed"], config["reproducibility"])
        init_logger(config)
        logging.getLogger().setLevel(logging.WARNING)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # RecBole 1.2.1's pandas notices
            data = create_dataset(config)
        train, valid, test = data_preparation(config, data)
        init_seed(config["seed"], config["reproducibility"])
        network = get_model(config["model"])(config, train._dataset).to(config["device"])
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, network)
        start = time.time()
        if config["epochs"] > 0:
            trainer.fit(train, valid, verbose=False)
            result = trainer.evaluate(test, load_best_model=True)
        else:
            result = trainer.evaluate(test, load_best_model=False)
        seconds = time.time() - start
    return {k: float(v) for k, v in result.items()}, seconds, trainer.saved_model_file


def run_comparison(settings: CompareSettings, run_dir: Path, log=print) -> dict:
    """Run the comparison; returns ``{"settings", "supervised", "zero_shot"}`` rows."""
    run_dir = Path(run_dir).resolve()  # each run changes into its own folder
    data = run_dir / "data"
    slice_info = write_user_slice(
        bundled_ml100k(), data, "ml100k-slice", settings.users, settings.last, settings.seed
    )
    log(f"upsr-compare: {slice_info}")
    common = {"seed": settings.seed, "MAX_ITEM_LIST_LENGTH": settings.last}
    upsr = {
        "plm_backbone": settings.backbone,
        "plm_encoder_layers": settings.encoder_layers,
        "plm_decoder_layers": settings.decoder_layers,
        "text_consistency_embedder": "none",
        "text_domains": None,
        "epochs": settings.epochs,
        "eval_step": settings.epochs,  # one validation: full-sort UPSR is the slow part
        "train_batch_size": 32,
        "eval_batch_size": 16,
        "learning_rate": 1e-4,
    }
    supervised = []
    for model in settings.models:
        overrides = {**common, **(upsr if model == "UPSR" else BASELINES[model])}
        if model in ("SASRec", "BERT4Rec"):
            overrides.update(
                epochs=settings.baseline_epochs, train_batch_size=256, learning_rate=1e-3
            )
        log(f"upsr-compare: {model} on {slice_info['dataset']}")
        result, seconds, _ = _run(model, "ml100k-slice", data, run_dir / model, overrides)
        supervised.append(
            {
                "model": model,
                "dataset": "ml100k-slice",
                **result,
                "train_seconds": round(seconds, 1),
            }
        )
        log(f"  {supervised[-1]}")
    out = {
        "settings": asdict(settings),
        "slice": slice_info,
        "supervised": supervised,
        "zero_shot": [],
    }
    if not settings.zero_shot:
        return out

    domains = write_genre_domains(data)
    sources = [d for d in domains if d not in ("unassigned", settings.target_domain)]
    for name in [*sources, settings.target_domain]:
        write_user_slice(
            data / f"ml-100k-{name}",
            data,
            f"{name}-slice",
            settings.users,
            settings.last,
            settings.seed,
        )
    mixed = mix_datasets(
        [data / f"{d}-slice" for d in sources], data, "source-slice", keep_ids=True
    )
    log(
        f"upsr-compare: pre-training on {sources} ({mixed['total']}), "
        f"zero-shot on {settings.target_domain}"
    )
    _, seconds, checkpoint = _run(
        "UPSR",
        "source-slice",
        data,
        run_dir / "pretrain",
        {**common, **upsr, "upsr_stage": "pretrain"},
    )
    target = f"{settings.target_domain}-slice"
    zero, _, _ = _run(
        "UPSR",
        target,
        data,
        run_dir / "zero-shot",
        {**common, **upsr, "epochs": 0, "upsr_init_checkpoint": checkpoint},
    )
    pop, _, _ = _run("Pop", target, data, run_dir / "pop", {**common, **BASELINES["Pop"]})
    out["zero_shot"] = [
        {
            "model": "UPSR zero-shot (pre-trained on " + "+".join(sources) + ")",
            "dataset": target,
            **zero,
            "train_seconds": round(seconds, 1),
        },
        {"model": "Pop (trained on the target)", "dataset": target, **pop, "train_seconds": 0.0},
    ]
    for row in out["zero_shot"]:
        log(f"  {row}")
    return out
