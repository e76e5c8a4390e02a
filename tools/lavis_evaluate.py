"""Evaluate a LAVIS model from a project config, as LAVIS's own evaluate.py does.

    python tools/lavis_evaluate.py --cfg-path configs/lavis/clip4clip/embedded_meanP.yaml \
        --options model.load_finetuned=true model.finetuned=<run dir>/checkpoint_best.pth

Runs the config's test splits (run.test_splits) without training.

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
    result = run(args.cfg_path, args.options, evaluate=True)
    if is_main_process():
        print(json.dumps({"output_dir": result["output_dir"], "test": result["test"]}))
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
