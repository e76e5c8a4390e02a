"""LAVIS's train.py / evaluate.py flow (not shipped in its wheel), for our tools and demo.

``run(cfg_path, options)`` does what LAVIS's ``train.py`` does (Config from ``--cfg-path``
and ``--options``, distributed set-up, seeds, task, datasets, model, the configured
runner) with three differences: every registry name in the config is checked first, so a
typo is an error naming it; the process group is gloo on CPU; the job id is agreed
between processes.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path
from types import SimpleNamespace

import retrieval_ext  # noqa: F401  (registers our names, applies the LAVIS fixes)
from retrieval_ext.runners import init_distributed

import numpy as np
import torch
import torch.distributed as dist
from lavis.common.config import Config
from lavis.common.dist_utils import get_rank, is_main_process
from lavis.common.logger import setup_logger
from omegaconf import OmegaConf
from torch.distributed.elastic.multiprocessing.errors import record

from plugins.compat import lavis_lookup


def check_registry_names(cfg_path: str, options: list[str] | None = None) -> None:
    """Raise ``KeyError`` naming any model / dataset builder / processor / task / runner /
    LR schedule of the config that LAVIS's registry does not know."""
    config = OmegaConf.merge(OmegaConf.load(cfg_path), OmegaConf.from_dotlist(list(options or [])))
    for section in ("model", "datasets", "run"):
        if section not in config:
            raise KeyError(f"{cfg_path}: missing the '{section}' section")
    lavis_lookup("model", config.model.arch)
    for name, dataset in config.datasets.items():
        lavis_lookup("builder", name)
        for processors in (dataset.get("vis_processor"), dataset.get("text_processor")):
            for proc in (processors or {}).values():
                if proc is not None:
                    lavis_lookup("processor", proc.name)
    lavis_lookup("task", config.run.task)
    lavis_lookup("runner", config.run.get("runner", "runner_base"))
    if "lr_sched" in config.run:
        lavis_lookup("lr_scheduler", config.run.lr_sched)


def setup_seeds(run_cfg) -> None:
    """LAVIS's seeding: ``seed + rank`` for Python, NumPy and torch."""
    seed = int(run_cfg.get("seed", 42)) + get_rank()
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _job_id(run_cfg) -> str:
    job_id = run_cfg.get("job_id", None) or time.strftime("%Y%m%d%H%M%S")
    if dist.is_initialized():  # every process must write into the same directory
        shared = [job_id]
        dist.broadcast_object_list(shared, src=0)
        job_id = shared[0]
    return str(job_id)


def build(cfg_path: str, options: list[str] | None = None, evaluate: bool = False):
    """``(cfg, task, model, datasets, runner)`` from a project config and dotlist options."""
    from lavis.tasks import setup_task

    check_registry_names(cfg_path, options)
    cfg = Config(SimpleNamespace(cfg_path=str(cfg_path), options=list(options or [])))
    if evaluate:
        cfg.run_cfg.evaluate = True
    init_distributed(cfg.run_cfg)
    setup_seeds(cfg.run_cfg)
    setup_logger()
    task = setup_task(cfg)
    datasets = task.build_datasets(cfg)
    model = task.build_model(cfg)
    runner_cls = lavis_lookup("runner", cfg.run_cfg.get("runner", "runner_base"))
    runner = runner_cls(
        cfg=cfg, job_id=_job_id(cfg.run_cfg), task=task, model=model, datasets=datasets
    )
    return cfg, task, model, datasets, runner


def run(cfg_path: str, options: list[str] | None = None, evaluate: bool = False) -> dict:
    """Train (or only evaluate) as the config says; returns ``{"test": {split: metrics},
    "output_dir": ..., "config": full config, "seconds": ...}`` (metrics on the main
    process only)."""
    cfg, _, _, _, runner = build(cfg_path, options, evaluate)
    start = time.time()
    logs = runner.evaluate(skip_reload=True) if evaluate else runner.train()
    return {
        "test": logs or {},
        "output_dir": str(runner.output_dir),
        "config": cfg.to_dict(),
        "seconds": time.time() - start,
    }


@record  # under torchrun, the failure summary then shows the failing rank's traceback
def main(argv=None, evaluate: bool = False, description: str | None = None) -> None:
    """Command line of ``tools/lavis_train.py`` and ``tools/lavis_evaluate.py``
    (``--cfg-path``, ``--options key=value ...``, as LAVIS's own scripts); prints
    ``{"output_dir": ..., "test": {split: metrics}}`` as JSON on the main process."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--cfg-path", required=True, help="project yaml: model, datasets, run")
    parser.add_argument("--options", nargs="+", default=[], help="overrides, key=value")
    args = parser.parse_args(argv)
    if not Path(args.cfg_path).is_file():
        parser.error(f"--cfg-path {args.cfg_path}: no such config file")
    result = run(args.cfg_path, args.options, evaluate=evaluate)
    if is_main_process():
        print(json.dumps({"output_dir": result["output_dir"], "test": result["test"]}))
    if dist.is_initialized():
        dist.destroy_process_group()
