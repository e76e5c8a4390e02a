"""Full-sort scoring throughput of UPSR against RecBole's SASRec, versus catalogue size.

Writes synthetic ML-100K-shaped datasets (titles, years, genres) with 1k / 5k / 20k items,
builds both models untrained (throughput does not depend on the weights), and times
full sort over the same batch of test users after one warm-up call, median of
``--repeats``. UPSR uses the texts its fine-tuning stage policy chooses, and is timed three
ways: the plain path (``plain_full_sort_predict``: items in id order, a plain seq2seq
forward per chunk), the fast path in fp32 (items sorted by token length, shared
cross-attention cache) and the fast path under bf16 autocast. Prints users/s of each, the
largest score difference of each fast path from the plain one, and the ratios, all
measured in the same run.

    python tools/analysis_tools/upsr_scoring_benchmark.py   # MiniLM warm start, 1k/5k/20k
    python tools/analysis_tools/upsr_scoring_benchmark.py --backbone tiny --items 1000 5000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import unittest.mock
from pathlib import Path

import recbole_ext  # noqa: F401  (host fixes, registers UPSR)
from recbole_ext.data.synthetic import write_synthetic_catalogue

import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, init_seed

from plugins.benchmarking import machine_stamp, median_seconds, write_results
from plugins.paths import CONFIG_DIR


def _config(model_name: str, data_path: Path, dataset: str, users: int, extra: dict):
    settings = {
        "data_path": str(data_path),
        "load_col": {
            "inter": ["user_id", "item_id", "timestamp"],
            "item": ["item_id", "movie_title", "release_year", "class"],
        },
        "eval_batch_size": users,
        "train_neg_sample_args": None,
        "loss_type": "CE",
        "show_progress": False,
        "text_consistency_embedder": "none",
        "text_domains": None,
        **extra,
    }
    files = [str(CONFIG_DIR / "recbole" / "upsr_text.yaml")] if model_name == "UPSR" else []
    with unittest.mock.patch.object(sys, "argv", sys.argv[:1]):
        return Config(
            model=model_name, dataset=dataset, config_file_list=files, config_dict=settings
        )


def _timed(predict, interaction, repeats: int):
    """(median seconds, scores) of ``predict`` after one warm-up call."""
    with torch.no_grad():
        scores = predict(interaction)  # warm-up: first-call allocations are not scoring
        seconds = median_seconds(lambda: predict(interaction), repeats, warmup=False)
    return seconds, scores


def build(model_name: str, data_path: Path, dataset: str, users: int, extra: dict):
    """The untrained model in eval mode and a batch of ``users`` test users."""
    config = _config(model_name, data_path, dataset, users, extra)
    init_seed(config["seed"], True)
    data = create_dataset(config)
    _, _, test = data_preparation(config, data)
    model = get_model(model_name)(config, test._dataset).eval()
    batch = next(iter(test))
    return model, (batch[0] if isinstance(batch, tuple) else batch)[:users]


def benchmark_upsr(data_path: Path, dataset: str, users: int, repeats: int, extra: dict) -> dict:
    """users/s of UPSR's plain, fast fp32 and fast bf16 full sort, and their differences."""
    model, interaction = build("UPSR", data_path, dataset, users, extra)
    plain_s, plain = _timed(model.plain_full_sort_predict, interaction, repeats)
    model.score_dtype = "float32"
    fast_s, fast = _timed(model.full_sort_predict, interaction, repeats)
    model.score_dtype = "bfloat16"
    bf16_s, bf16 = _timed(model.full_sort_predict, interaction, repeats)
    finite = torch.isfinite(plain)
    return {
        "texts": f"{model.text_names[0]} / {model.text_names[1]}",
        "item tokens (mean)": round(float(model.item_token_len[1:].float().mean()), 1),
        "plain users/s": users / plain_s,
        "fast fp32 users/s": users / fast_s,
        "fast bf16 users/s": users / bf16_s,
        "max |fast fp32 - plain|": float((fast - plain)[finite].abs().max()),
        "max |fast bf16 - plain|": float((bf16 - plain)[finite].abs().max()),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--users", type=int, default=4, help="users per timed batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backbone", default="minilm", help="UPSR plm_backbone")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    upsr = {"plm_backbone": args.backbone, "upsr_stage": "finetune"}  # fine-tuning texts
    machine = machine_stamp()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.items:
            name = f"synthetic{n}"
            write_synthetic_catalogue(Path(tmp) / name, n, n_users=max(args.users, 50))
            sasrec, interaction = build("SASRec", Path(tmp), name, args.users, {})
            sasrec_s, _ = _timed(sasrec.full_sort_predict, interaction, args.repeats)
            ours = benchmark_upsr(Path(tmp), name, args.users, args.repeats, upsr)
            row = {
                "items": n,
                "threads": torch.get_num_threads(),
                "load": round(os.getloadavg()[0], 1),
                "SASRec users/s": round(args.users / sasrec_s, 1),
                **{k: round(v, 4) if isinstance(v, float) else v for k, v in ours.items()},
                "fast bf16 / plain": round(ours["fast bf16 users/s"] / ours["plain users/s"], 2),
                "fast fp32 / plain": round(ours["fast fp32 users/s"] / ours["plain users/s"], 2),
                "UPSR bf16 / SASRec": f"{ours['fast bf16 users/s'] * sasrec_s / args.users:.2e}",
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    from tabulate import tabulate

    print(tabulate(rows, headers="keys", tablefmt="github"))
    if args.out:
        results = {"args": vars(args) | {"out": str(args.out)}, "machine": machine, "rows": rows}
        write_results(args.out.parent, results, json_name=args.out.name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
