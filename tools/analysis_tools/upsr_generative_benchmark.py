"""UPSR's generative top-K (trie-constrained beam search) against full sort, on the same
trained model, as the catalogue grows.

Trains UPSR once on RecBole's bundled ML-100K (leave-one-out by time, every user, the
settings of ``tools/experiments/upsr/upsr_compare.py --upsr-config
configs/recbole/upsr_ml100k_cpu.yaml``), or takes a saved UPSR checkpoint (``--checkpoint``,
loaded with ``weights_only=True``).
Then, per catalogue size, writes ML-100K plus seeded synthetic distractor items nobody
interacted with (RecBole atomic files), rebuilds UPSR for that catalogue with the trained
PLM weights and the item / history texts chosen on ML-100K (pinned by name), and on the
same seeded test users measures, in one run:

- full sort (``upsr_full_sort: score``: every item's text scored, ``upsr_score_dtype``
  of the config) and generative top-K (``upsr_full_sort: generative``, ``--num-beams``);
- Recall and NDCG at 10 (and 20 when the beams reach it) from each user's rank of the
  held-out item (a generated list that misses it counts as a miss), users/s of both and
  their ratio, and how many of full sort's top 10 the beams also return.

It also records which texts the fine-tuning stage policy would choose on each enlarged
catalogue, to show whether the distractors change the choice. Writes results.json
(rewritten after each catalogue) and report.md, both with the command and settings.

    OMP_NUM_THREADS=1 python tools/analysis_tools/upsr_generative_benchmark.py --users 60 \
        --out runs/upsr-gen
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shlex
import sys
import time
import warnings
from pathlib import Path

import recbole_ext  # noqa: F401  (host fixes, registers UPSR)
from recbole_ext.compare import CompareSettings, recbole_config, upsr_overrides
from recbole_ext.data.atomic import column, read_atomic, write_atomic
from recbole_ext.data.loaders import data_preparation
from recbole_ext.data.ml100k_domains import bundled_ml100k, write_user_slice
from recbole_ext.data.synthetic import TITLE_WORDS, synthetic_items
from recbole_ext.ranks import rank_metrics, rank_to_json, target_ranks

import numpy as np
import torch
from recbole.config import Config
from recbole.data import create_dataset
from recbole.utils import get_model, get_trainer, init_logger, init_seed

from plugins.benchmarking import machine_stamp, write_results
from plugins.paths import CONFIG_DIR

CPU_CONFIG = CONFIG_DIR / "recbole" / "upsr_ml100k_cpu.yaml"


def _dataset(config: Config):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # RecBole 1.2.1's pandas notices
        return create_dataset(config)


def train(data_path: Path, dataset: str, run_dir: Path, overrides: dict, log) -> dict:
    """Train UPSR with RecBole's Trainer (no test); returns the checkpoint and the texts."""
    config = recbole_config("UPSR", dataset, data_path, run_dir, overrides)
    run_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(run_dir):  # RecBole writes log/ into the working directory
        init_seed(config["seed"], config["reproducibility"])
        init_logger(config)
        logging.getLogger().setLevel(logging.WARNING)
        train_data, valid_data, _ = data_preparation(config, _dataset(config))
        init_seed(config["seed"], config["reproducibility"])
        model = get_model("UPSR")(config, train_data._dataset)
        trainer = get_trainer(config["MODEL_TYPE"], config["model"])(config, model)
        start = time.time()
        log(f"training UPSR: {config['epochs']} epochs of {train_data.sample_size} prefixes")
        trainer.fit(train_data, valid_data, verbose=False)
    return {
        "checkpoint": trainer.saved_model_file,
        "texts": list(model.text_names),
        "train_seconds": round(time.time() - start, 1),
        "training_rows": config["epochs"] * train_data.sample_size,
    }


DISTRACTOR_WORDS = ("synthetic", "source")


def write_catalogue(
    source: Path, out_dir: Path, size: int, seed: int, words: str = "synthetic"
) -> dict:
    """``source``'s interactions and items plus ``size - items`` synthetic distractor items
    (ids after the largest, in the columns of ``source``'s .item) that nobody interacted
    with. Their titles draw 3 words from ``synthetic.TITLE_WORDS`` (``words="synthetic"``)
    or from the words of the source's own titles (``"source"``: distractors written in the
    vocabulary the trained model knows). Returns the dataset name and counts."""
    if words not in DISTRACTOR_WORDS:
        raise ValueError(f"--distractor-words: {words!r} is not one of {DISTRACTOR_WORDS}")
    item_path = source / f"{source.name}.item"
    header, items = read_atomic(item_path)
    if size < len(items):
        raise ValueError(
            f"--catalogues: {size} is smaller than the {len(items)} items of {item_path}"
        )
    name = f"{source.name}-{size}items" + ("-source-words" if words == "source" else "")
    folder = out_dir / name
    fields = ("item_id", "movie_title", "release_year", "class")
    where = [column(header, f, item_path) for f in fields]
    first = max(int(row[where[0]]) for row in items) + 1
    pool = TITLE_WORDS
    if words == "source":  # title words without the "(1995)" years, in a fixed order
        pool = sorted({w for row in items for w in row[where[1]].split() if w.isalpha()})
    distractors = []
    for values in synthetic_items(size - len(items), np.random.default_rng(seed), first, pool):
        row = [""] * len(header)
        for index, value in zip(where, values, strict=True):
            row[index] = value
        distractors.append(row)
    write_atomic(folder / f"{name}.item", header, items + distractors)
    inter_header, inters = read_atomic(source / f"{source.name}.inter")
    write_atomic(folder / f"{name}.inter", inter_header, inters)
    return {"dataset": name, "items": size, "distractors": len(distractors)}


def measure(model, test, log, label: str) -> dict:
    """Full sort, then generative top-K, over the batches of ``test``: ranks, seconds,
    and the share of full sort's top 10 that the beams return."""
    out = {}
    top10 = []
    for mode in ("score", "generative"):
        model.full_sort_mode = mode
        ranks, seconds, overlap, done = [], 0.0, [], 0
        for batch in test:
            interaction = batch[0]
            target = interaction[model.POS_ITEM_ID]
            start = time.perf_counter()
            with torch.no_grad():
                scores = model.full_sort_predict(interaction)
            seconds += time.perf_counter() - start
            ranks += target_ranks(scores, target)
            if mode == "score":
                top10 += scores.topk(10, dim=1).indices.tolist()
            else:
                for row, exact in zip(scores, top10[done : done + len(target)], strict=True):
                    overlap.append(float(torch.isfinite(row[exact]).float().mean()))
            done += len(target)
            log(
                f"  {label} {mode}: {done}/{len(test._dataset)} users, {done / seconds:.3f} users/s"
            )
        out[mode] = {"ranks": ranks, "seconds": round(seconds, 2), "users/s": done / seconds}
        if overlap:
            out[mode]["top10_shared_with_full_sort"] = float(np.mean(overlap))
    model.full_sort_mode = "score"
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--catalogues",
        type=int,
        nargs="+",
        default=[5000, 20000],
        help="item counts with distractors, measured after the source's own catalogue",
    )
    parser.add_argument("--users", type=int, default=60, help="seeded test users measured")
    parser.add_argument(
        "--distractor-words",
        choices=DISTRACTOR_WORDS,
        default="synthetic",
        help="distractor titles from synthetic.TITLE_WORDS or from the source's title words",
    )
    parser.add_argument("--num-beams", type=int, default=20, help="upsr_num_beams")
    parser.add_argument("--seed", type=int, default=2020, help="training, users, distractors")
    parser.add_argument("--checkpoint", help="a saved UPSR checkpoint instead of training")
    parser.add_argument("--upsr-config", default=str(CPU_CONFIG))
    parser.add_argument("--backbone", default="minilm")
    parser.add_argument("--encoder-layers", type=int, default=2)
    parser.add_argument("--decoder-layers", type=int, default=1)
    parser.add_argument("--max-item-list-length", type=int, default=50)
    parser.add_argument("--epochs", type=int, help="override the config's epochs")
    parser.add_argument(
        "--data-users",
        type=int,
        help="a seeded slice of this many ML-100K users (default: all; for smoke tests)",
    )
    parser.add_argument("--data-last", type=int, help="with --data-users: latest interactions")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)

    def log(message):
        print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)

    ks = [k for k in (10, 20) if k <= args.num_beams]
    if not ks:
        parser.error("--num-beams must be at least 10 (Recall/NDCG@10)")
    overrides = upsr_overrides(
        CompareSettings(
            backbone=args.backbone,
            encoder_layers=args.encoder_layers,
            decoder_layers=args.decoder_layers,
            upsr_config=args.upsr_config,
        )
    )
    overrides.update(
        MAX_ITEM_LIST_LENGTH=args.max_item_list_length,
        seed=args.seed,
        topk=ks,
        upsr_num_beams=args.num_beams,
        eval_step=0,  # no validation: the checkpoint is the last epoch
        test_users=args.users,  # drawn with the seed: the same users in every catalogue
    )
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    data = out / "data"
    source = write_user_slice(
        bundled_ml100k(), data, "ml100k", args.data_users, args.data_last, args.seed
    )
    results = {
        "command": "OMP_NUM_THREADS="
        + os.environ.get("OMP_NUM_THREADS", "unset")
        + " python tools/analysis_tools/upsr_generative_benchmark.py "
        + shlex.join(sys.argv[1:] if argv is None else argv),
        "args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "threads": torch.get_num_threads(),
        "load_start": os.getloadavg()[0],
        "machine": machine_stamp(),
        "data": source,
        "upsr_config": {k: v for k, v in overrides.items()},
        "catalogues": [],
    }

    def save():
        write_results(out, results)

    if args.checkpoint:
        results["model"] = {"checkpoint": args.checkpoint}
    else:
        results["model"] = train(data, "ml100k", out / "train", overrides, log)
        log(f"trained: {results['model']}")
    save()
    checkpoint = results["model"]["checkpoint"]
    texts = results["model"].get("texts")
    sizes = sorted({source["items"], *args.catalogues})
    if sizes[0] != source["items"]:
        parser.error(f"--catalogues: {sizes[0]} is below the source's {source['items']} items")
    chosen_users = None
    for size in sizes:
        if size == source["items"]:
            catalogue = {"dataset": "ml100k", "items": size, "distractors": 0}
        else:
            catalogue = write_catalogue(
                data / "ml100k", data, size, args.seed, args.distractor_words
            )
        log(f"catalogue {catalogue}")
        keys = {**overrides, "upsr_init_checkpoint": checkpoint, "epochs": 0}
        if texts:  # the constructions the trained model read on ML-100K
            keys.update(upsr_item_text=texts[0], upsr_history_text=texts[1])
        config = recbole_config("UPSR", catalogue["dataset"], data, out / "eval", keys)
        init_seed(config["seed"], config["reproducibility"])
        dataset = _dataset(config)
        train_data, _, loader = data_preparation(config, dataset)  # test_users: seeded
        model = get_model("UPSR")(config, train_data._dataset).eval()
        if texts is None:  # --checkpoint: pin the texts chosen on ML-100K from here on
            texts = list(model.text_names)
        # what the policy would choose here, measured as when training (on the train split)
        choice = model.text.evaluate(train_data._dataset)["chosen"]["finetune"]
        tested = loader._dataset
        users = tested.id2token(tested.uid_field, tested.inter_feat[tested.uid_field]).tolist()
        if chosen_users is None:
            chosen_users = users
        if users != chosen_users:  # the catalogues share the interactions, so the draw too
            raise RuntimeError(f"{catalogue['dataset']}: other test users than ML-100K's")
        measured = measure(model, loader, log, f"{size} items")
        row = {
            **catalogue,
            "n_items_model": model.n_items - 1,
            "texts_used": texts,
            "policy_choice_on_this_catalogue": [choice["item"], choice["history"]],
            "output_vocab": len(model.output_vocab),
            "item_tokens_mean": round(float(model.item_token_len[1:].float().mean()), 2),
            "users": len(users),
            "load": os.getloadavg()[0],
        }
        for mode, part in measured.items():
            row[mode] = {
                **rank_metrics(part["ranks"], ks),
                **{k: v for k, v in part.items() if k != "ranks"},
            }
            # per user, in user order; null: the held-out item was not generated
            row[mode]["ranks"] = [rank_to_json(r) for r in part["ranks"]]
        row["generative/score users/s"] = row["generative"]["users/s"] / row["score"]["users/s"]
        results["catalogues"].append(row)
        save()
        log(
            f"{size} items: "
            + json.dumps({m: {k: v for k, v in row[m].items() if k != "ranks"} for m in measured})
        )
    results["load_end"] = os.getloadavg()[0]
    results["users"] = chosen_users
    save()
    report = _report(results, ks)
    write_results(out, markdown=report)
    print(report)
    return 0


def _report(results: dict, ks: list[int]) -> str:
    from tabulate import tabulate

    rows = []
    for c in results["catalogues"]:
        row = {"items": c["items"], "users": c["users"]}
        for mode, name in (("score", "full sort"), ("generative", "generative")):
            for k in ks:
                row[f"{name} Recall@{k}"] = round(c[mode][f"recall@{k}"], 4)
                row[f"{name} NDCG@{k}"] = round(c[mode][f"ndcg@{k}"], 4)
            row[f"{name} users/s"] = round(c[mode]["users/s"], 3)
        row["generative / full sort speed"] = round(c["generative/score users/s"], 2)
        row["full-sort top-10 in beams"] = round(c["generative"]["top10_shared_with_full_sort"], 3)
        row["policy choice here"] = " / ".join(c["policy_choice_on_this_catalogue"])
        rows.append(row)
    return "\n".join(
        [
            "# UPSR generative top-K against full sort\n",
            f"Command: `{results['command']}`\n",
            f"Threads {results['threads']}, load average {results['load_start']:.2f} at the "
            f"start, {results.get('load_end', float('nan')):.2f} at the end. Model: "
            f"`{json.dumps(results['model'])}`. Texts used in every catalogue: "
            f"{results['catalogues'][0]['texts_used'] if results['catalogues'] else '-'}.\n",
            tabulate(rows, headers="keys", tablefmt="github"),
            "",
        ]
    )


if __name__ == "__main__":
    sys.exit(main())
