"""mmengine 0.10.7's ``launcher='pytorch'`` assumes CUDA."""

from __future__ import annotations

import functools
import os

import torch


def mmengine_cpu_launcher() -> bool:
    """Let ``launcher='pytorch'`` (torchrun) train on CPU-only machines with gloo.

    Upstream: no mmengine issue tracks it (the same fix for mmdetection's CPU training is
    openvinotoolkit/mmdetection#77). ``mmengine.dist.utils._init_dist_pytorch`` calls
    ``torch.cuda.set_device(local_rank)`` unconditionally and the Runner's default backend
    is NCCL, so ``torchrun ... --launcher pytorch`` dies on a CPU machine before training;
    ``Runner.wrap_model`` then passes ``device_ids=[LOCAL_RANK]`` to DDP, which CPU modules
    reject. With CUDA absent this fix initialises gloo without touching CUDA and wraps the
    model with ``device_ids=None``. Machines with CUDA keep mmengine's own behaviour.

    Returns:
        True if applied by this call.
    """
    from mmengine.dist import utils as dist_utils
    from mmengine.runner import Runner

    if getattr(dist_utils._init_dist_pytorch, "_plugzoo_cpu", False):
        return False
    init_on_cuda = dist_utils._init_dist_pytorch

    @functools.wraps(init_on_cuda)
    def _init_dist_pytorch(backend, init_backend="torch", **kwargs):
        if torch.cuda.is_available() or init_backend != "torch":
            return init_on_cuda(backend, init_backend=init_backend, **kwargs)
        if backend != "gloo":
            backend = "gloo"  # NCCL needs CUDA; gloo is torch's CPU backend
        torch.distributed.init_process_group(
            backend=backend,
            rank=int(os.environ["RANK"]),
            world_size=int(os.environ["WORLD_SIZE"]),
            **kwargs,
        )

    _init_dist_pytorch._plugzoo_cpu = True
    dist_utils._init_dist_pytorch = _init_dist_pytorch

    wrap_on_cuda = Runner.wrap_model

    @functools.wraps(wrap_on_cuda)
    def wrap_model(self, model_wrapper_cfg, model):
        if self.distributed and not torch.cuda.is_available():
            model_wrapper_cfg = dict(model_wrapper_cfg or {})
            model_wrapper_cfg.setdefault("type", "MMDistributedDataParallel")
            model_wrapper_cfg.setdefault("broadcast_buffers", False)
            model_wrapper_cfg.setdefault(
                "find_unused_parameters", self.cfg.get("find_unused_parameters", False)
            )
            model_wrapper_cfg["device_ids"] = None  # CPU modules: DDP takes no device ids
        return wrap_on_cuda(self, model_wrapper_cfg, model)

    Runner.wrap_model = wrap_model
    return True
