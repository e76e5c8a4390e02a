"""Pieces the CLIP4Clip-based retrieval models share: the autograd-aware batch gather,
frozen submodules kept in eval mode, and checkpoint loading that names what does not
match."""

from __future__ import annotations

import contextlib
import contextvars
from pathlib import Path

import torch
import torch.distributed as dist
from lavis.common.dist_utils import is_dist_avail_and_initialized
from torch import nn


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """``[B, ...]`` per process -> ``[world * B, ...]`` in rank order, with gradients.

    Every process then computes the loss of the whole (global) batch, and the gradients
    reaching its own rows are summed over processes. A no-op without a process group.
    """
    if not is_dist_avail_and_initialized() or dist.get_world_size() == 1:
        return tensor
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(tensor), dim=0)


_LOCAL_BATCH = contextvars.ContextVar("local_batch", default=False)


@contextlib.contextmanager
def local_batch():
    """Inside it, :func:`all_gather_batch_with_grad` returns its inputs: each process scores
    its own batch alone (evaluation diagnostics, whose batches may differ in size between
    processes, where a collective would fail or hang)."""
    token = _LOCAL_BATCH.set(True)
    try:
        yield
    finally:
        _LOCAL_BATCH.reset(token)


def all_gather_batch_with_grad(*tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """:func:`all_gather_with_grad` of several ``[B, ...]`` tensors in ONE collective.

    One gather per step, not one per tensor: with several gathers in flight, autograd may
    run their backward collectives in a different order on different processes, and gloo
    then pairs one tensor's gradient with another's (seen with X-CLIP's four gathered
    features: every visual gradient wrong, no error raised). Integer tensors (masks) come
    back with their dtype; they carry no gradient.
    """
    if _LOCAL_BATCH.get() or not is_dist_avail_and_initialized() or dist.get_world_size() == 1:
        return tensors
    batch = tensors[0].shape[0]
    flat = [
        t.reshape(batch, -1).to(torch.float32 if not t.is_floating_point() else t.dtype)
        for t in tensors
    ]
    gathered = all_gather_with_grad(torch.cat(flat, dim=1))
    out, start = [], 0
    for index, tensor in enumerate(tensors):
        width = flat[index].shape[1]
        part = gathered[:, start : start + width].reshape(-1, *tensor.shape[1:])
        out.append(part if tensor.is_floating_point() else part.round().to(tensor.dtype))
        start += width
    return tuple(out)


class FrozenSubmodulesStayInEval:
    """Mixin for an ``nn.Module``: ``train()`` leaves every submodule whose parameters are
    all frozen (``requires_grad=False``) in eval mode, so its dropout stays off and its
    norm statistics fixed while the rest trains (the runner calls ``model.train()`` at
    every epoch)."""

    def train(self, mode: bool = True):
        super().train(mode)
        if mode:
            for module in self.modules():
                params = list(module.parameters())
                if module is not self and params and not any(p.requires_grad for p in params):
                    module.eval()
        return self


def without_prefix(key: str, prefix: str) -> str:
    """``key`` without a leading ``prefix`` (``str.removeprefix``, which needs Python 3.9)."""
    return key[len(prefix) :] if key.startswith(prefix) else key


def checkpoint_state(model: nn.Module) -> dict:
    """What a checkpoint of ``model`` holds: its whole state dict (frozen parameters too:
    ALBEF's momentum encoders are part of its training state) except the keys under the
    model's ``checkpoint_exclude_prefixes`` (submodules that load from their own files,
    such as TeachCLIP's frozen teachers)."""
    excluded = tuple(getattr(model, "checkpoint_exclude_prefixes", ()))
    return {
        k: v for k, v in model.state_dict().items() if not (excluded and k.startswith(excluded))
    }


def load_model_state(
    model: nn.Module,
    state: dict,
    path: str | Path,
    key: str = "model.finetuned",
    frozen_kept: bool = False,
) -> None:
    """``model.load_state_dict(state)``; keys missing (other than those checkpoints leave
    out, :func:`checkpoint_state`) or unexpected stop with their names, ``path`` and the
    config ``key`` that named the file.

    Args:
        frozen_kept: The model's frozen parameters already hold the weights they were
            frozen at (its CLIP came from ``model.pretrained``), so a checkpoint may leave
            them out, as LAVIS's ``RunnerBase`` does (it saves trainable parameters only).
    """
    result = model.load_state_dict(state, strict=False)
    excluded = tuple(getattr(model, "checkpoint_exclude_prefixes", ()))
    missing = [k for k in result.missing_keys if not (excluded and k.startswith(excluded))]
    frozen = {name for name, param in model.named_parameters() if not param.requires_grad}
    left_out = [k for k in missing if k in frozen]
    if left_out and frozen_kept:
        missing = [k for k in missing if k not in frozen]
    elif left_out and not result.unexpected_keys and len(left_out) == len(missing):
        raise KeyError(
            f"{key} = {path}: the checkpoint is missing frozen parameters {left_out[:10]} "
            "(LAVIS's RunnerBase saves trainable parameters only); set model.pretrained to "
            "the CLIP weights they were frozen at"
        )
    if missing or result.unexpected_keys:
        raise KeyError(
            f"{key} = {path}: checkpoint does not match the model: missing {missing[:10]}, "
            f"unexpected {result.unexpected_keys[:10]}"
        )
