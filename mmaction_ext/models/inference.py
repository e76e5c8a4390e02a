# Copyright (c) plugzoo contributors. Apache-2.0.
"""Inference treatments that apply to any MMAction2 2D network, STH or not: so that STH and
its baselines can be measured under the same treatment.

- :func:`fold_batch_norms`: each eval-mode BatchNorm of an MMCV ``ConvModule`` folded into
  the conv before it (a plain ``Conv2d``, one wrapped by MMAction2's ``TemporalShift``, an
  ``STHConv`` or ``STHDepthwiseConv``); the ``ConvModule`` then skips its norm.
- :func:`prepack_convs`: every plain ``Conv2d`` runs through oneDNN with its weight packed
  once per input shape, the mechanism ``STHConv`` uses for its own convs at inference
  (:func:`.sth_onednn.packed_conv2d`).
- :func:`set_sth_trace_path`: what ``torch.jit.trace`` records for each ``STHConv``: the two
  plain convs (the counted multiply-adds, what FLOP counters read) or the block's
  arrangement in plain operators a compiler can freeze.

All three keep the outputs up to float rounding (``tests/test_sth_inference.py``).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from mmaction.models.backbones.resnet_tsm import TemporalShift
from mmcv.cnn import ConvModule
from mmcv.cnn.bricks.wrappers import Conv2d as MMCVConv2d
from torch.nn.modules.batchnorm import _BatchNorm

from . import sth_fast_paths, sth_onednn
from .sth_conv import STHConv, STHDepthwiseConv


@torch.no_grad()
def fold_batch_norms(model: nn.Module) -> int:
    """Fold the BatchNorm of every ``ConvModule`` of ``model`` whose norm follows its conv
    and is in eval mode (running statistics) into that conv; returns how many were folded.
    Call it on a model in eval mode, for inference only: training would update statistics
    that are no longer there."""
    folded = 0
    for name, module in model.named_modules():
        if not (isinstance(module, ConvModule) and module.with_norm):
            continue
        norm = module.norm
        order = list(module.order)
        if not isinstance(norm, _BatchNorm) or norm.training or not norm.track_running_stats:
            continue
        if order.index("norm") != order.index("conv") + 1:
            continue
        # affine=False: weight 1 and bias 0
        weight = norm.weight if norm.weight is not None else torch.ones_like(norm.running_var)
        bias = norm.bias if norm.bias is not None else torch.zeros_like(norm.running_mean)
        scale = weight / torch.sqrt(norm.running_var + norm.eps)
        shift = bias - norm.running_mean * scale
        _fold_into(module.conv, scale, shift, name)
        setattr(module, module.norm_name, nn.Identity())
        module.with_norm = False
        folded += 1
    return folded


def _fold_into(conv: nn.Module, scale: torch.Tensor, shift: torch.Tensor, name: str) -> None:
    """``conv``'s output channel ``o`` becomes ``scale[o] * out + shift[o]``."""
    if isinstance(conv, TemporalShift):  # the shift moves inputs only
        conv = conv.net
    if isinstance(conv, nn.Conv2d):
        _scale_conv(conv, scale, shift)
    elif isinstance(conv, STHConv):
        parts = [c for c in (conv.spatial, conv.temporal) if c is not None]
        for part in parts:  # both sum into every output channel: scale both, shift once
            _scale_conv(part, scale, shift if part is parts[0] else None)
    elif isinstance(conv, STHDepthwiseConv):
        ct = conv.temporal_channels  # temporal channels first, then spatial ones
        if conv.temporal is not None:
            _scale_conv(conv.temporal, scale[:ct], shift[:ct])
        if conv.spatial is not None:
            _scale_conv(conv.spatial, scale[ct:], shift[ct:])
    else:
        raise TypeError(
            f"fold_batch_norms: {name}.conv is a {type(conv).__name__}; expected a Conv2d "
            "(possibly inside a TemporalShift), an STHConv or an STHDepthwiseConv"
        )


def _scale_conv(conv: nn.Conv2d, scale: torch.Tensor, shift: torch.Tensor | None) -> None:
    conv.weight.mul_(scale.view(-1, *[1] * (conv.weight.dim() - 1)))
    if conv.bias is not None:
        conv.bias.mul_(scale)
        if shift is not None:
            conv.bias.add_(shift)
    elif shift is not None:
        conv.bias = nn.Parameter(shift.clone())


class PackedConv2d(nn.Conv2d):
    """A ``Conv2d`` that, at inference on channels-last float32 CPU input, runs through
    oneDNN with its weight packed once per input shape (kept until the weight changes), as
    ``STHConv``'s own convs do; elsewhere (autograd, tracing, other input) it is the plain
    ``Conv2d``. Same parameters and state-dict keys as the ``Conv2d`` it replaces."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._weight_cache = sth_fast_paths.WeightCache()

    @classmethod
    def from_conv(cls, conv: nn.Conv2d) -> PackedConv2d:
        """A ``PackedConv2d`` sharing ``conv``'s parameters."""
        packed = cls(
            conv.in_channels,
            conv.out_channels,
            conv.kernel_size,
            conv.stride,
            conv.padding,
            conv.dilation,
            conv.groups,
            conv.bias is not None,
            device="meta",  # the parameters are conv's: allocate none
        )
        packed.weight, packed.bias = conv.weight, conv.bias
        packed.train(conv.training)
        return packed

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = sth_onednn.packed_conv2d(self, self, x)
        return super().forward(x) if out is None else out


def prepack_convs(model: nn.Module) -> int:
    """Replace every plain ``Conv2d`` of ``model`` (torch's, or MMCV's wrapper that
    ``ConvModule`` builds) by a :class:`PackedConv2d` sharing its parameters (those of an
    ``STHConv``, which packs its own, are left); returns how many. Convs with a padding
    mode other than zeros or a string padding are left as they are."""
    replaced = 0
    for parent in list(model.modules()):
        if isinstance(parent, STHConv):
            continue
        for name, child in list(parent.named_children()):
            if (
                type(child) in (nn.Conv2d, MMCVConv2d)
                and child.padding_mode == "zeros"
                and not isinstance(child.padding, str)
            ):
                setattr(parent, name, PackedConv2d.from_conv(child))
                replaced += 1
    return replaced


def set_sth_trace_path(model: nn.Module, path: str) -> int:
    """Set what ``torch.jit.trace`` records for every ``STHConv`` of ``model`` (see
    ``STHConv``'s ``trace_path`` argument): ``'counted'`` or ``'fast'``; returns how many."""
    if path not in ("counted", "fast"):
        raise ValueError(f"set_sth_trace_path: path must be 'counted' or 'fast', got {path!r}")
    convs = [m for m in model.modules() if isinstance(m, STHConv)]
    for conv in convs:
        conv.trace_path = path
    return len(convs)
