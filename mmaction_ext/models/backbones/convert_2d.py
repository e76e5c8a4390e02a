# Copyright (c) plugzoo contributors. Apache-2.0.
"""Convert a 2D network's checkpoint into its STH counterpart, reporting what did not fit."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn as nn
from mmengine.logging import MMLogger, print_log

from ..sth_conv import STHConv, STHDepthwiseConv


def load_2d_state_dict(
    model: nn.Module,
    state_dict: dict[str, torch.Tensor],
    source_name: Callable[[str], str] = lambda name: name,
    checkpoint: str = "checkpoint",
    logger: MMLogger | None = None,
) -> dict[str, list[str]]:
    """Copy a 2D checkpoint into ``model``; STH convs are initialised from the 2D conv
    they replaced (:meth:`STHConv.load_2d_weight`).

    Unlike MMAction2's loaders, a shape mismatch is an error (naming the key), an STH conv
    the checkpoint has no 2D weight for is an error naming it (it would silently keep its
    random initialisation), and every other checkpoint key not placed and model tensor
    not found is logged.

    Args:
        model: The STH network.
        state_dict: The 2D network's tensors.
        source_name: Maps a module name of ``model`` to the module name in ``state_dict``
            (e.g. MMAction2's ``layer1.0.conv1.conv`` to torchvision's ``layer1.0.conv1``).
        checkpoint: Where ``state_dict`` came from, for the messages.

    Returns:
        ``{"placed": [...], "unplaced": [...], "missing": [...]}``: checkpoint keys used,
        checkpoint keys left over, and model tensors the checkpoint did not have.
    """
    placed, missing, unfilled = [], [], []
    for name, module in model.named_modules():
        source = source_name(name)
        if isinstance(module, (STHConv, STHDepthwiseConv)):
            key = f"{source}.weight"
            if key not in state_dict:
                unfilled.append(f"{name} (looked for {key!r})")
                continue
            bias_key = f"{source}.bias"
            try:
                module.load_2d_weight(state_dict[key], state_dict.get(bias_key))
            except ValueError as error:
                raise ValueError(f"{checkpoint}: key {key!r}: {error}") from None
            placed += [key] + ([bias_key] if bias_key in state_dict else [])
            continue
        if any(
            isinstance(parent, (STHConv, STHDepthwiseConv)) for parent in _ancestors(model, name)
        ):
            continue  # filled by the STH module above
        tensors = dict(module.named_parameters(recurse=False))
        tensors.update(module.named_buffers(recurse=False))
        for local, tensor in tensors.items():
            if tensor is None:
                continue
            key = f"{source}.{local}" if source else local
            if key not in state_dict:
                missing.append(f"{name}.{local} (looked for {key})")
                continue
            value = state_dict[key]
            if value.shape != tensor.shape:
                raise ValueError(
                    f"{checkpoint}: key {key!r} has shape {tuple(value.shape)}, but "
                    f"{name}.{local} needs {tuple(tensor.shape)}"
                )
            with torch.no_grad():
                tensor.copy_(value)
            placed.append(key)
    if unfilled:
        raise ValueError(
            f"{checkpoint}: {len(unfilled)} STH convs have no 2D weight in this checkpoint and "
            f"would keep their random initialisation: {', '.join(unfilled)}. First checkpoint "
            f"keys: {sorted(state_dict)[:5]}. A 2D checkpoint is expected here (a trained STH "
            "checkpoint goes to `load_from`)."
        )
    unplaced = sorted(set(state_dict) - set(placed))
    if unplaced:
        print_log(
            f"{checkpoint}: {len(unplaced)} checkpoint keys were not placed: {unplaced}",
            logger=logger or "current",
            level=30,
        )
    if missing:
        print_log(
            f"{checkpoint}: {len(missing)} model tensors are not in the checkpoint and "
            f"keep their initialisation: {missing}",
            logger=logger or "current",
            level=30,
        )
    return {"placed": placed, "unplaced": unplaced, "missing": missing}


def _ancestors(model: nn.Module, name: str):
    """The modules that contain submodule ``name`` of ``model``, outermost first (not
    ``model`` itself, not the submodule)."""
    parts = name.split(".") if name else []
    module = model
    for part in parts[:-1]:
        module = getattr(module, part)
        yield module


def read_2d_checkpoint(path: str) -> dict[str, torch.Tensor]:
    """A 2D checkpoint's tensors (a bare state dict or one under 'state_dict'), loaded
    through mmengine with weights_only=True. A recogniser's or classifier's ``backbone.``
    prefix (MMAction2, MMPretrain) is removed; its other keys stay, to be reported."""
    from mmengine.runner.checkpoint import _load_checkpoint

    checkpoint = _load_checkpoint(path, map_location="cpu")
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path}: expected a state dict, got {type(checkpoint).__name__}")
    state = checkpoint.get("state_dict", checkpoint)
    prefix = "backbone."  # str.removeprefix is Python 3.9+; MMAction2 supports 3.7
    return {
        k[len(prefix) :] if k.startswith(prefix) else k: v
        for k, v in state.items()
        if isinstance(v, torch.Tensor)
    }
