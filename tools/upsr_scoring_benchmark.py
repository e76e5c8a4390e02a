"""Full-sort scoring throughput of UPSR against RecBole's SASRec, versus catalogue size.

Writes synthetic ML-100K-shaped datasets (titles, years, genres) with 1k / 5k / 20k items,
builds both models untrained (throughput does not depend on the weights), and times
``full_sort_predict`` over the same batch of test users after one warm-up call, median of
``--repeats``. Prints
users/s and the ratio UPSR / SASRec measured in the same run.

    python tools/upsr_scoring_benchmark.py                        # MiniLM warm start, 1k/5k/20k
    python tools/upsr_scoring_benchmark.py --backbone tiny --items 1000 5000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
import unittest.mock
from pathlib import Path

import recbole_ext  # noqa: F401  (host fixes, registers UPSR)
from recbole_ext.data.synthetic import write_synthetic_catalogue

import torch
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.utils import get_model, init_seed

from plugins.paths import CONFIG_DIR


def time_full_sort(
    model_name: str, data_path: Path, dataset: str, users: int, repeats: int, extra: dict
):
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
        config = Config(
            model=model_name, dataset=dataset, config_file_list=files, config_dict=settings
        )
    init_seed(config["seed"], True)
    data = create_dataset(config)
    _, _, test = data_preparation(config, data)
    model = get_model(model_name)(config, test._dataset).eval()
    batch = next(iter(test))
    interaction = (batch[0] if isinstance(batch, tuple) else batch)[:users]
    seconds = []
    with torch.no_grad():
        model.full_sort_predict(interaction)  # warm-up: first-call allocations are not scoring
        for _ in range(repeats):
            start = time.perf_counter()
            model.full_sort_predict(interaction)
            seconds.append(time.perf_counter() - start)
    return users / statistics.median(seconds)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--users", type=int, default=4, help="users per timed batch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--backbone", default="minilm", help="UPSR plm_backbone")
    parser.add_argument("--out", type=Path, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    upsr = {
        "plm_backbone": args.backbone,
        "upsr_item_text": "title_year_disambiguated",
        "upsr_history_text": "prompt_watched_20",
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.items:
            name = f"synthetic{n}"
            write_synthetic_catalogue(Path(tmp) / name, n, n_users=max(args.users, 50))
            sasrec = time_full_sort("SASRec", Path(tmp), name, args.users, args.repeats, {})
            ours = time_full_sort("UPSR", Path(tmp), name, args.users, args.repeats, upsr)
            row = {
                "items": n,
                "SASRec users/s": round(sasrec, 1),
                f"UPSR ({args.backbone}) users/s": round(ours, 4),
                "UPSR / SASRec": f"{ours / sasrec:.2e}",
            }
            rows.append(row)
            print(json.dumps(row), flush=True)
    from tabulate import tabulate

    print(tabulate(rows, headers="keys", tablefmt="github"))
    if args.out:
        args.out.write_text(
            json.dumps({"args": vars(args) | {"out": str(args.out)}, "rows": rows}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
