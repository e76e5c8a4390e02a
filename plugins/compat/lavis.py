"""LAVIS 1.0.2 defects: decord's process-wide output type, CUDA-only statistics sync, silent
registry misses."""

from __future__ import annotations

import functools


def isolate_lavis_decord_bridge() -> bool:
    """Keep LAVIS's torch-tensor decoding from leaking into every other decord user.

    Upstream: no LAVIS issue tracks it. ``lavis/datasets/data_utils.py`` runs
    ``decord.bridge.set_bridge("torch")`` at import, switching decord's global output to
    torch tensors; MMAction2's ``DecordDecode`` then fails with "'Tensor' object has no
    attribute 'asnumpy'" in any process that imported LAVIS (one pytest run, one demo).
    The fix restores decord's native bridge and runs LAVIS's ``load_video`` (its only
    decord reader, which relies on the torch bridge) inside ``decord.bridge.use_torch()``.

    Returns:
        True if applied by this call.
    """
    import decord
    from lavis.datasets import data_utils
    from lavis.processors import alpro_processors

    if getattr(data_utils.load_video, "_plugzoo_torch_bridge", False):
        return False
    lavis_load_video = data_utils.load_video

    @functools.wraps(lavis_load_video)
    def load_video(*args, **kwargs):
        with decord.bridge.use_torch():
            return lavis_load_video(*args, **kwargs)

    load_video._plugzoo_torch_bridge = True
    for module in (data_utils, alpro_processors):
        module.load_video = load_video
    decord.bridge.reset_bridge()
    return True


LAVIS_REGISTRY_KINDS = ("builder", "model", "task", "processor", "lr_scheduler", "runner")


def lavis_lookup(kind: str, name: str):
    """``registry.get_<kind>_class(name)``, raising instead of returning None.

    Upstream: ``lavis.common.registry`` returns None for an unknown name, so a typo in a
    config surfaces later as "'NoneType' object has no attribute 'from_config'". This
    raises ``KeyError`` naming the kind, the name and the registered names.
    """
    from lavis.common.registry import registry

    if kind not in LAVIS_REGISTRY_KINDS:
        raise ValueError(f"unknown LAVIS registry kind {kind!r}; expected {LAVIS_REGISTRY_KINDS}")
    found = getattr(registry, f"get_{kind}_class")(name)
    if found is None:
        known = sorted(registry.mapping[f"{kind}_name_mapping"])
        raise KeyError(
            f"no LAVIS {kind} named {name!r} is registered (did you import retrieval_ext?); "
            f"registered {kind}s: {known}"
        )
    return found


def lavis_metric_sync_on_cpu() -> bool:
    """Let LAVIS's training-loop statistics synchronise over a CPU (gloo) process group.

    Upstream: ``lavis/common/logger.py`` (1.0.2) ``SmoothedValue.synchronize_between_processes``
    builds its all-reduce tensor with ``device="cuda"``; every distributed training epoch
    ends with it (``BaseTask._train_inner_loop``), so gloo DDP on a CPU machine fails
    there. The fix puts the tensor on the device the process group's backend uses.

    Returns:
        True if applied by this call.
    """
    import torch
    import torch.distributed as dist
    from lavis.common import dist_utils
    from lavis.common.logger import SmoothedValue

    if getattr(SmoothedValue.synchronize_between_processes, "_plugzoo_any_device", False):
        return False

    def synchronize_between_processes(self):
        """Sum ``count`` and ``total`` over processes (does not synchronise the deque)."""
        if not dist_utils.is_dist_avail_and_initialized():
            return
        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        t = torch.tensor([self.count, self.total], dtype=torch.float64, device=device)
        dist.barrier()
        dist.all_reduce(t)
        self.count, self.total = int(t[0].item()), t[1].item()

    synchronize_between_processes._plugzoo_any_device = True
    SmoothedValue.synchronize_between_processes = synchronize_between_processes
    return True
