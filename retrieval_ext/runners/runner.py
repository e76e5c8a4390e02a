"""A LAVIS runner that trains on CPU or GPU, in one process or under torchrun DDP.

``RunnerBase`` (LAVIS 1.0.2) cannot do that as shipped:
- its ``model`` property returns None when the model already sits on the device, and it
  wraps DDP with CUDA device ids;
- its loaders wrap every map-style dataset in ``PrefetchLoader``, which creates a CUDA
  stream, and its ``IterLoader`` sleeps 2 s at each epoch boundary;
- ``train`` calls ``dist.barrier()`` unguarded every epoch (LAVIS #537), starts the best
  metric at 0 (a model scoring 0 never gets a "best" checkpoint to reload), and saves no
  checkpoint to resume from when a validation split exists, and a resumed run shuffles
  as in its first epoch;
- its optimiser has two parameter groups and its schedulers overwrite every group's rate;
- its output directory is relative to LAVIS's installed package, and registering it a
  second time (a second runner in one process) raises;
- its checkpoint loads are plain ``torch.load`` (and resume may download a URL).
This subclass replaces exactly those pieces and keeps the rest of RunnerBase (evaluation,
logging, dataset concatenation, the task's training loop).
"""

from __future__ import annotations

import datetime
import logging
import os
import random
import time
from pathlib import Path

from retrieval_ext.models.common import checkpoint_state, load_model_state
from retrieval_ext.runners.optim import build_optimizer

import numpy as np
import torch
import torch.distributed as dist
from lavis.common.dist_utils import get_rank, get_world_size, is_main_process, main_process
from lavis.common.registry import registry
from lavis.datasets.datasets.dataloader_utils import PrefetchLoader
from lavis.runners.runner_base import RunnerBase
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler

from plugins.compat import lavis_lookup
from plugins.compat.checkpoints import CheckpointLoadError, load_checkpoint


def init_distributed(run_cfg) -> None:
    """Join the torchrun process group if launched by torchrun, else run single-process.

    Sets ``run_cfg.distributed``, ``rank``, ``world_size``, ``gpu``; the backend is NCCL
    with CUDA and gloo without (``run_cfg.dist_backend`` overrides). LAVIS's
    ``init_distributed_mode`` always selects a CUDA device and NCCL.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        run_cfg.distributed = False
        return
    run_cfg.rank = int(os.environ["RANK"])
    run_cfg.world_size = int(os.environ["WORLD_SIZE"])
    run_cfg.gpu = int(os.environ.get("LOCAL_RANK", 0))
    run_cfg.distributed = True
    use_cuda = str(run_cfg.get("device", "cpu")).startswith("cuda")
    if use_cuda:
        torch.cuda.set_device(run_cfg.gpu)
    backend = run_cfg.get("dist_backend", None) or ("nccl" if use_cuda else "gloo")
    run_cfg.dist_backend = backend
    if not dist.is_initialized():
        dist.init_process_group(
            backend=backend,
            world_size=run_cfg.world_size,
            rank=run_cfg.rank,
            timeout=datetime.timedelta(minutes=30),
        )


def barrier() -> None:
    """``dist.barrier()`` when a process group exists; a no-op otherwise."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def seed_epoch(seed: int, epoch: int) -> None:
    """Seed Python, NumPy and torch for one epoch of one rank. The seed is hashed from
    (seed, rank, epoch): ``seed + epoch`` would give run seed 43 the epochs of run seed
    42 shifted by one."""
    epoch_seed = int(np.random.SeedSequence([seed, get_rank(), epoch]).generate_state(1)[0])
    random.seed(epoch_seed)
    np.random.seed(epoch_seed)
    torch.manual_seed(epoch_seed)


class EpochLoader:
    """An endless iterator over a DataLoader, started afresh by :meth:`start_epoch`."""

    def __init__(self, loader: DataLoader):
        self.loader, self.epoch = loader, 0
        self._iter = None  # made on first use: with workers, iter() starts them

    def start_epoch(self, epoch: int) -> None:
        """Start the pass of ``epoch``: a DistributedSampler shuffles for that epoch; a
        RandomSampler and the workers' seeds draw from torch's global generator."""
        self.epoch = epoch
        if isinstance(self.loader.sampler, DistributedSampler):
            self.loader.sampler.set_epoch(epoch)
        self._iter = iter(self.loader)

    def __next__(self):
        if self._iter is None:
            self.start_epoch(self.epoch)
        try:
            return next(self._iter)
        except StopIteration:  # a loop that runs past one pass
            self.start_epoch(self.epoch + 1)
            return next(self._iter)

    def __iter__(self):
        return self

    def __len__(self):
        return len(self.loader)


@registry.register_runner("runner_portable")
class PortableRunner(RunnerBase):
    """RunnerBase on any device: see the module docstring for what is replaced.

    Extra ``run`` keys: ``seed`` (with the rank and the epoch, seeds each epoch: shuffle,
    frame offsets and the workers), ``train_shuffle``
    (default true; false gives N processes at batch b the same batches as one at N * b),
    ``find_unused_parameters`` (DDP), ``save_latest`` (default true: a
    ``checkpoint_latest.pth`` every epoch, for ``resume_ckpt_path``).
    """

    def __init__(self, cfg, task, model, datasets, job_id):
        super().__init__(cfg, task, model, datasets, job_id)
        self.best_agg_metric, self.best_epoch = float("-inf"), None
        self.best_checkpoint = None  # a resumed run's best may live in the earlier run's dir

    # ------------------------------------------------------------------ set-up
    def setup_output_dir(self):
        """``run.output_dir`` relative to the working directory (LAVIS: to its package)."""
        output_dir = Path(self.config.run_cfg.output_dir).expanduser().resolve() / self.job_id
        result_dir = output_dir / "result"
        result_dir.mkdir(parents=True, exist_ok=True)
        # set, not register_path: that raises for a second runner in the same process
        registry.mapping["paths"]["result_dir"] = str(result_dir)
        registry.mapping["paths"]["output_dir"] = str(output_dir)
        self.result_dir, self.output_dir = result_dir, output_dir

    @property
    def model(self):
        if self._wrapped_model is None:
            self._model = self._model.to(self.device)
            if self.use_distributed:
                cuda = self.device.type == "cuda"
                self._wrapped_model = DistributedDataParallel(
                    self._model,
                    device_ids=[self.config.run_cfg.gpu] if cuda else None,
                    find_unused_parameters=self.config.run_cfg.get("find_unused_parameters", False),
                )
            else:
                self._wrapped_model = self._model
        return self._wrapped_model

    @property
    def optimizer(self):
        """``run.optimizer`` (AdamW or CLIP4Clip's BertAdam, with optional gradient clipping:
        :func:`retrieval_ext.runners.optim.build_optimizer`) over the model's parameter
        groups, each at ``init_lr * lr_scale``. Groups at the base rate come first, so the
        rate LAVIS's progress line prints (the first group's) is the new layers'."""
        if self._optimizer is None:
            run_cfg = self.config.run_cfg
            weight_decay = float(run_cfg.weight_decay)
            model = self.unwrap_dist_model(self.model)
            if hasattr(model, "get_optimizer_params"):
                groups = model.get_optimizer_params(weight_decay)
            else:  # RunnerBase's two groups
                decay, no_decay = [], []
                for name, param in model.named_parameters():
                    if param.requires_grad:
                        plain = param.ndim < 2 or "bias" in name or "ln" in name or "bn" in name
                        (no_decay if plain else decay).append(param)
                groups = [
                    {"params": decay, "weight_decay": weight_decay},
                    {"params": no_decay, "weight_decay": 0.0},
                ]
            for index, group in enumerate(groups):
                group.setdefault("lr_scale", 1.0)
                group.setdefault("name", str(index))
                group["lr"] = self.init_lr * group["lr_scale"]
            groups.sort(key=lambda g: g["lr_scale"] != 1.0)  # stable: base-rate groups first
            logging.info(
                "parameter groups: %s",
                [(g["name"], len(g["params"]), g["lr_scale"]) for g in groups],
            )
            self._optimizer = build_optimizer(groups, run_cfg, self.init_lr, weight_decay)
        return self._optimizer

    @property
    def lr_scheduler(self):
        if self._lr_sched is None:
            run_cfg = self.config.run_cfg
            self._lr_sched = lavis_lookup("lr_scheduler", run_cfg.lr_sched)(
                optimizer=self.optimizer,
                max_epoch=self.max_epoch,
                min_lr=self.min_lr,
                init_lr=self.init_lr,
                decay_rate=run_cfg.get("lr_decay_rate", None),
                warmup_start_lr=run_cfg.get("warmup_lr", -1),
                warmup_steps=run_cfg.get("warmup_steps", 0),
                iters_per_epoch=len(self.train_loader),
                warmup_proportion=run_cfg.get("warmup_proportion", None),
            )
        return self._lr_sched

    def create_loaders(
        self, datasets, num_workers, batch_sizes, is_trains, collate_fns, dataset_ratios=None
    ):
        """One DataLoader per split, CUDA prefetching only on CUDA. Under DDP, training
        gets a DistributedSampler; so does evaluation while ``run.use_dist_eval_sampler``
        (LAVIS's key, default true) holds: each process then encodes a shard of the
        gallery and the model sums the shards, so every process scores the whole set."""
        loaders = []
        # hashed for the same reason as seed_epoch (the sampler adds the epoch); the same
        # on every rank, as DistributedSampler needs
        sampler_seed = int(
            np.random.SeedSequence(int(self.config.run_cfg.get("seed", 42))).generate_state(1)[0]
        )
        shuffle_train = bool(self.config.run_cfg.get("train_shuffle", True))
        for dataset, batch_size, is_train, collate_fn in zip(
            datasets, batch_sizes, is_trains, collate_fns, strict=True
        ):
            if isinstance(dataset, (list, tuple)):
                raise NotImplementedError(
                    "runner_portable takes map-style datasets only (no webdataset mixtures)"
                )
            sampler = None
            if self.use_distributed and (is_train or self.use_dist_eval_sampler):
                sampler = DistributedSampler(
                    dataset,
                    num_replicas=get_world_size(),
                    rank=get_rank(),
                    shuffle=is_train and shuffle_train,
                    seed=sampler_seed,
                )
                if not is_train:
                    logging.info("Evaluation loader sharded across %d processes", get_world_size())
            loader = DataLoader(
                dataset,
                batch_size=batch_size,
                num_workers=num_workers,
                pin_memory=self.cuda_enabled,
                sampler=sampler,
                shuffle=sampler is None and is_train and shuffle_train,
                collate_fn=collate_fn,
                drop_last=is_train,
            )
            if is_train and len(loader) == 0:  # LAVIS's loop would divide by zero
                per_process = len(sampler) if sampler is not None else len(dataset)
                raise ValueError(
                    f"the training split has {per_process} items per process, fewer than "
                    f"run.batch_size_train={batch_size} (incomplete batches are dropped): "
                    "lower the batch size or add data"
                )
            if self.cuda_enabled:
                loader = PrefetchLoader(loader)
            loaders.append(EpochLoader(loader) if is_train else loader)
        return loaders

    # ------------------------------------------------------------------ training
    def train_epoch(self, epoch):
        # each epoch's randomness (shuffle, frame offsets, dropout) depends only on the
        # seed, the rank and the epoch, so a resumed run repeats the uninterrupted one
        seed_epoch(int(self.config.run_cfg.get("seed", 42)), epoch)
        self.train_loader.start_epoch(epoch)
        stats = super().train_epoch(epoch)
        # LAVIS logs the first group's rate as "{:.3f}" (1e-7 reads 0.000): every group's
        # last rate, readable
        for group in self.optimizer.param_groups:
            stats[f"lr_{group['name']}"] = f"{group['lr']:.3e}"
        # the training datasets' shared counters see every loader worker's skips
        train = self.datasets.get("train")  # by split once the loaders exist (RunnerBase)
        skips = sum(getattr(d, "decode_skips", 0) for d in getattr(train, "datasets", [train]))
        if skips:
            logging.warning("%d undecodable training videos replaced so far (this process)", skips)
            stats["decode_skips"] = skips
        return stats

    def train(self):
        start_time = time.time()
        self.log_config()
        if not self.evaluate_only and self.resume_ckpt_path is not None:
            self._load_checkpoint(self.resume_ckpt_path)
        cur_epoch = self.start_epoch
        for cur_epoch in range(self.start_epoch, self.max_epoch):
            if not self.evaluate_only:
                logging.info("Start training epoch %d", cur_epoch)
                self.log_stats(split_name="train", stats=self.train_epoch(cur_epoch))
            for split_name in self.valid_splits:
                logging.info("Evaluating on %s.", split_name)
                val_log = self.eval_epoch(split_name=split_name, cur_epoch=cur_epoch)
                if val_log is None:  # processes other than the main one
                    continue
                if split_name == self.valid_splits[0] and (
                    val_log["agg_metrics"] > self.best_agg_metric
                ):
                    self.best_agg_metric, self.best_epoch = val_log["agg_metrics"], cur_epoch
                    if not self.evaluate_only:
                        self._save_checkpoint(cur_epoch, is_best=True)
                val_log.update({"best_epoch": self.best_epoch})
                self.log_stats(val_log, split_name)
            if not self.evaluate_only and (
                not self.valid_splits or self.config.run_cfg.get("save_latest", True)
            ):
                self._save_checkpoint(cur_epoch, is_best=False)
            if self.evaluate_only:
                break
            barrier()  # the main process may still be writing a checkpoint
        if dist.is_available() and dist.is_initialized():
            # only the main process saw the validation metrics and saved the best model;
            # every process must reload that one (a resumed run's may hold another path)
            shared = [self.best_checkpoint]
            dist.broadcast_object_list(shared, src=0)
            self.best_checkpoint = shared[0]
        test_epoch = "best" if self.valid_splits and not self.evaluate_only else cur_epoch
        test_logs = self.evaluate(cur_epoch=test_epoch, skip_reload=self.evaluate_only)
        logging.info("Training time %s", datetime.timedelta(seconds=int(time.time() - start_time)))
        return test_logs  # {split: metrics} on the main process (RunnerBase returns None)

    def evaluate(self, cur_epoch="best", skip_reload=False):
        """Test splits; the metrics also go to ``log.txt`` (main process)."""
        logs = super().evaluate(cur_epoch=cur_epoch, skip_reload=skip_reload)
        if logs and is_main_process():
            self.log_stats({k: v for k, v in logs.items() if v is not None}, "test")
        return logs

    # ------------------------------------------------------------------ checkpoints
    @main_process
    def _save_checkpoint(self, cur_epoch, is_best=False):
        model = self.unwrap_dist_model(self.model)
        state = checkpoint_state(model)
        save_to = self.output_dir / f"checkpoint_{'best' if is_best else 'latest'}.pth"
        if is_best:
            self.best_checkpoint = str(save_to)
        torch.save(
            {
                "model": state,
                "optimizer": self.optimizer.state_dict(),
                "config": self.config.to_dict(),
                "scaler": self.scaler.state_dict() if self.scaler else None,
                "epoch": cur_epoch,
                "best_agg_metric": self.best_agg_metric,
                "best_epoch": self.best_epoch,
                "best_checkpoint": self.best_checkpoint,
            },
            save_to,
        )
        logging.info("Saved epoch %s to %s", cur_epoch, save_to)

    def _read_checkpoint(self, path, key: str) -> dict:
        """A runner checkpoint, ``weights_only=True``; a missing, refused or unreadable file
        stops with its path and the config ``key`` that gave it."""
        checkpoint = load_checkpoint(path, key, map_location=self.device)
        if not isinstance(checkpoint, dict) or not isinstance(checkpoint.get("model"), dict):
            raise CheckpointLoadError(path, "not a checkpoint this runner wrote (no 'model')", key)
        return checkpoint

    def _reload_best_model(self, model):
        path = self.best_checkpoint or self.output_dir / "checkpoint_best.pth"
        logging.info("Loading checkpoint from %s.", path)
        key = "the best checkpoint of this run (run.output_dir)"
        load_model_state(model, self._read_checkpoint(path, key)["model"], path, key)
        return model

    def _load_checkpoint(self, url_or_filename):
        """Resume model, optimiser, scaler, epoch and best metric from a local file."""
        checkpoint = self._read_checkpoint(url_or_filename, "run.resume_ckpt_path")
        load_model_state(
            self.unwrap_dist_model(self.model),
            checkpoint["model"],
            url_or_filename,
            "run.resume_ckpt_path",
        )
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.scaler and checkpoint.get("scaler"):
            self.scaler.load_state_dict(checkpoint["scaler"])
        self.start_epoch = int(checkpoint["epoch"]) + 1
        self.best_agg_metric = checkpoint.get("best_agg_metric", float("-inf"))
        self.best_epoch = checkpoint.get("best_epoch")
        self.best_checkpoint = checkpoint.get("best_checkpoint")
        logging.info("Resumed from %s at epoch %d", url_or_filename, self.start_epoch)
