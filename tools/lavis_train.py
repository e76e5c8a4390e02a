"""Train (and test) a LAVIS model from a project config, as LAVIS's own train.py does.

    python tools/lavis_train.py --cfg-path configs/lavis/clip4clip/embedded_meanP.yaml \
        [--options run.max_epoch=3 run.device=cpu ...]
    torchrun --standalone --nproc_per_node 2 tools/lavis_train.py --cfg-path ...   # DDP

Prints the test metrics as JSON on the last line (main process).
"""

import argparse
import json

from retrieval_ext.launch import run

import torch.distributed as dist
from lavis.common.dist_utils import is_main_process


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cfg-path", required=True, help="project yaml: model, datasets, run")
    parser.add_argument("--options", nargs="+", default=[], help="overrides, key=value")
    args = parser.parse_args(argv)
    result = run(args.cfg_path, args.options)
    if is_main_process():
        print(json.dumps({"output_dir": result["output_dir"], "test": result["test"]}))
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
