"""Multi-process RecBole training on CPUs (gloo), launched by torchrun.

    torchrun --standalone --nproc_per_node 2 tools/recbole_ddp.py --model UPSR \
        --dataset ml-100k --config-file configs/recbole/upsr_text.yaml \
        --config-file configs/recbole/upsr_ml100k.yaml --out runs/upsr-ddp.json

Each process runs RecBole's own ``run_recbole``: RecBole's trainer, its distributed
samplers and its metric all-gather; plugzoo's ``recbole_cpu_distributed`` fix lets them
run on gloo. On GPUs use RecBole's own launcher instead (``run_recbole.py --nproc N`` or
``recbole.quick_start.run_recboles``), which is NCCL-only.
"""

import argparse
import json
import os
import sys
import unittest.mock
from pathlib import Path

import recbole_ext  # noqa: F401  (host fixes, registers UPSR)

import torch
from recbole.quick_start import run_recbole
from torch.distributed.elastic.multiprocessing.errors import record


@record  # torchrun's failure summary then shows the failing rank's traceback
def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--config-file", action="append", default=[], type=Path)
    parser.add_argument("--out", type=Path, help="rank 0 writes the results here (JSON)")
    args = parser.parse_args(argv)
    if "LOCAL_RANK" not in os.environ:
        parser.error("run me under torchrun (LOCAL_RANK is not set)")
    if torch.cuda.is_available():
        parser.error("CUDA is available: use RecBole's own NCCL launcher (see --help)")
    # the launcher's rendezvous already gives every process its group: reuse it
    torch.distributed.init_process_group(backend="gloo")
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    distributed = {
        "local_rank": local_rank,
        "world_size": int(os.environ["WORLD_SIZE"]),
        "nproc": int(os.environ["LOCAL_WORLD_SIZE"]),
        "offset": rank - local_rank,
        "ip": os.environ["MASTER_ADDR"],
        "port": os.environ["MASTER_PORT"],
    }
    # RecBole's Config also parses `--key=value` from sys.argv: give it none of ours
    with unittest.mock.patch.object(sys, "argv", sys.argv[:1]):
        result = run_recbole(
            model=args.model,
            dataset=args.dataset,
            config_file_list=[str(f) for f in args.config_file],
            config_dict=distributed,
        )
    if rank == 0 and args.out:
        payload = {k: v for k, v in result.items() if k.endswith("result")}
        payload["world_size"] = distributed["world_size"]
        args.out.write_text(json.dumps(payload, indent=1, default=float))
    if torch.distributed.is_initialized():  # run_recbole destroys the group itself
        torch.distributed.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
