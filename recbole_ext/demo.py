"""The RecBole stages of ``plugzoo demo``: RecBole's own SASRec on the bundled ML-100K (the
host baseline), and UPSR beside SASRec, Pop and ItemKNN on a seeded ML-100K user slice
(``recbole_ext.compare``)."""

from __future__ import annotations

import contextlib
import logging
import sys
import time
import unittest.mock
import warnings
from pathlib import Path

import recbole_ext  # noqa: F401  (host fixes)

from plugins.demo import check_size
from plugins.paths import CONFIG_DIR
from plugins.report import StageResult
from plugins.separation import flag, separation_notes

SASREC_CONFIG = CONFIG_DIR / "recbole" / "sasrec_ml100k.yaml"
# what each demo size changes in SASREC_CONFIG: quick trains one epoch of a smaller SASRec
# (for tests of the demo itself), default one epoch of the config's, full its two
SASREC_OVERRIDES = {
    "quick": {"epochs": 1, "hidden_size": 16, "inner_size": 32, "n_layers": 1, "n_heads": 1},
    "default": {"epochs": 1},
    "full": {},
}
# recbole_ext.compare.CompareSettings of the UPSR stage, per demo size
UPSR_SETTINGS = {
    "quick": {"users": 30, "baseline_epochs": 2, "backbone": "tiny"},
    "default": {"users": 60, "baseline_epochs": 20, "backbone": "minilm"},
    "full": {"users": 60, "baseline_epochs": 20, "backbone": "minilm"},
}


def sasrec_baseline(run_dir: Path, size: str = "default") -> StageResult:
    """Train and test RecBole's SASRec with RecBole's own trainer; plot loss and NDCG@10."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from recbole.config import Config
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import get_model, get_trainer, init_logger, init_seed

    start = time.time()
    stage_dir = run_dir / "recbole_sasrec"
    stage_dir.mkdir(parents=True, exist_ok=True)
    overrides = {"checkpoint_dir": str(stage_dir / "saved"), **SASREC_OVERRIDES[check_size(size)]}
    # RecBole's Config also parses (and evaluates) `--key=value` from sys.argv: give it
    # none of plugzoo's arguments
    with unittest.mock.patch.object(sys, "argv", sys.argv[:1]):
        config = Config(
            model="SASRec",
            dataset="ml-100k",
            config_file_list=[str(SASREC_CONFIG)],
            config_dict=overrides,
        )
    # RecBole writes log/ and log_tensorboard/ into the working directory
    with contextlib.chdir(stage_dir):
        init_seed(config["seed"], config["reproducibility"])
        init_logger(config)
        logging.getLogger().setLevel(logging.WARNING)  # the demo prints its own progress
        with warnings.catch_warnings():
            # RecBole 1.2.1's own pandas 3 deprecation notices; nothing a demo user can act on
            warnings.simplefilter("ignore", FutureWarning)
            dataset = create_dataset(config)
        train_data, valid_data, test_data = data_preparation(config, dataset)
        init_seed(config["seed"], config["reproducibility"])
        model = get_model(config["model"])(config, train_data._dataset).to(config["device"])
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)

        valid_curve = []

        def record(epoch, valid_score):
            valid_curve.append((epoch, float(valid_score)))
            print(f"  SASRec epoch {epoch}: valid {config['valid_metric']} = {valid_score:.4f}")

        train_start = time.time()
        trainer.fit(train_data, valid_data, verbose=False, callback_fn=record)
        train_seconds = time.time() - train_start
        test_result = trainer.evaluate(test_data, load_best_model=True)

    row = {"model": "SASRec (RecBole)", "dataset": "ml-100k"}
    row.update({k: float(v) for k, v in test_result.items()})
    row["train_seconds"] = round(train_seconds, 1)

    fig, (loss_ax, valid_ax) = plt.subplots(1, 2, figsize=(9, 3.2))
    epochs = sorted(trainer.train_loss_dict)
    loss_ax.plot(epochs, [trainer.train_loss_dict[e] for e in epochs], marker="o")
    loss_ax.set(
        title="SASRec training loss", xlabel="epoch", ylabel="sum over batches", xticks=epochs
    )
    valid_ax.plot([e for e, _ in valid_curve], [s for _, s in valid_curve], marker="o")
    valid_ax.set(title=f"valid {config['valid_metric']}", xlabel="epoch", xticks=epochs)
    fig.tight_layout()
    figure = stage_dir / "sasrec_curves.png"
    fig.savefig(figure, dpi=100)
    plt.close(fig)

    changed = ", ".join(f"{k} {v}" for k, v in SASREC_OVERRIDES[size].items())
    stage = StageResult(
        name="recbole.sasrec_baseline",
        title="RecBole baseline: SASRec on ML-100K",
        summary=(
            f"RecBole's SASRec trained by RecBole's Trainer for {config['epochs']} epoch(s) on "
            "the bundled ML-100K (leave-one-out by time, full ranking), tested after reloading "
            "the best checkpoint. Config: `configs/recbole/sasrec_ml100k.yaml`"
            + (f" with {changed} ({size} settings)." if changed else ".")
        ),
        rows=[row],
        config=dict(config.final_config_dict),
        figures=[str(figure.relative_to(run_dir))],
        seconds=time.time() - start,
    )
    users = int(test_data.sample_size)  # leave-one-out: one test row per user
    return flag(stage, separation_notes([row], "recall@10", users, items="test users"))


def upsr_compare_settings(size: str):
    """The ``recbole_ext.compare.CompareSettings`` the UPSR stage runs at ``size``."""
    from recbole_ext.compare import CompareSettings

    return CompareSettings(
        models=["Pop", "ItemKNN", "SASRec", "UPSR"],  # history-free anchors first
        last=8,
        epochs=1,
        zero_shot=False,
        **UPSR_SETTINGS[check_size(size)],
    )


def upsr_stage(run_dir: Path, size: str = "default") -> StageResult:
    """UPSR (MiniLM warm start) fine-tuned and tested beside SASRec on an ML-100K slice."""
    from dataclasses import asdict

    from recbole_ext.compare import run_comparison, with_control_columns

    start = time.time()
    settings = upsr_compare_settings(size)
    result = run_comparison(settings, run_dir / "recbole_upsr", log=lambda m: print(f"  {m}"))
    stage = StageResult(
        name="recbole.upsr",
        title="UPSR beside SASRec, Pop and ItemKNN on an ML-100K user slice",
        summary=(
            f"UPSR ({settings.backbone} backbone, {settings.encoder_layers} encoder / "
            f"{settings.decoder_layers} decoder layers, {settings.epochs} epoch), RecBole's "
            f"SASRec ({settings.baseline_epochs} epochs) and the history-free anchors Pop and "
            "ItemKNN, trained by RecBole's Trainer on the same "
            f"leave-one-out split of {result['data']['users']} seeded ML-100K users with their "
            f"{settings.last} latest interactions ({result['data']['items']} items), full "
            "ranking. A slice this small is a smoke-scale run: one hit moves Recall@10 by "
            f"{1 / result['data']['users']:.3f}. `tools/experiments/upsr/upsr_compare.py` runs "
            "larger settings and the zero-shot transfer."
        ),
        rows=[with_control_columns(row) for row in result["supervised"]],
        config=asdict(settings) | {"size": size, "slice": result["data"]},
        seconds=time.time() - start,
    )
    notes = separation_notes(
        result["supervised"], "recall@10", result["data"]["users"], items="test users"
    )
    return flag(stage, notes)
