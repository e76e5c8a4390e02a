"""Recall / NDCG / MRR @k from the per-user test ranks that
`tools/experiments/upsr/upsr_compare.py` logs.

    python tools/experiments/upsr/upsr_rank_metrics.py runs/upsr-full/UPSR/test_ranks.jsonl \
        runs/baselines/SASRec-2020/SASRec/test_ranks.jsonl

Every file is restricted to the users all files share, so a test stopped part-way (a full
sort of a generative model on a CPU) is compared with the baselines on the same users.
Ranks and metrics as `recbole_ext.ranks` defines them (a `null` rank: never ranked, a miss).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from recbole_ext.ranks import rank_from_json, rank_metrics


def read_ranks(path: Path) -> dict[int, float]:
    ranks = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        try:
            row = json.loads(line)
            ranks[int(row["user"])] = rank_from_json(row["rank"])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"{path}:{number}: expected {{'user': id, 'rank': n or null}}: {error}"
            ) from error
    return ranks


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--k", type=int, nargs="+", default=[10, 20])
    args = parser.parse_args(argv)
    ranks = {f: read_ranks(f) for f in args.files}
    users = set.intersection(*(set(r) for r in ranks.values()))
    if not users:
        raise SystemExit("no user is in every file")
    for f, r in ranks.items():
        row = {"file": str(f), "users": len(users), "of": len(r)}
        row.update(
            {k: round(v, 4) for k, v in rank_metrics([r[u] for u in sorted(users)], args.k).items()}
        )
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
