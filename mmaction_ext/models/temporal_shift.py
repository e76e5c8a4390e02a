# Copyright (c) plugzoo contributors. Apache-2.0.
"""TSM's temporal shift, computed in the input's memory format.

MMAction2's :class:`~mmaction.models.backbones.resnet_tsm.TemporalShift` views the frames
as ``[N, T, C, H*W]`` and concatenates the three channel parts along ``C``: the result is a
contiguous NCHW tensor whatever the input's layout. In a network run channels-last, every
shifted block then converts the layout twice (NCHW out of the shift, back to channels-last
in the next conv). :class:`LayoutPreservingTemporalShift` writes the same values into a
tensor of the input's layout; :func:`keep_layout_in_temporal_shifts` swaps it into a built
``ResNetTSM``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from mmaction.models.backbones.resnet_tsm import TemporalShift


class LayoutPreservingTemporalShift(TemporalShift):
    """MMAction2's ``TemporalShift`` whose output keeps the input's memory format.

    The values are those of the host's shift: the first ``C // shift_div`` channels take
    the next frame's values, the next ``C // shift_div`` the previous frame's, the rest stay;
    frames beyond a clip's ends read zeros. (The host fills those blanks with
    ``x - x``, so an infinite or NaN input gives NaN there; this shift writes zeros.)
    Parameters and state-dict keys are the host's (``net.*``).
    """

    @staticmethod
    def shift(x: torch.Tensor, num_segments: int, shift_div: int = 3) -> torch.Tensor:
        """``[N * num_segments, C, H, W]`` shifted along time, in ``x``'s memory format."""
        nt, c, h, w = x.shape
        fold = c // shift_div
        # empty_like keeps x's memory format; splitting the batch axis is a view in any
        # format, so every write below is a strided copy, never a layout change
        out = torch.empty_like(x)
        src = x.view(nt // num_segments, num_segments, c, h, w)
        dst = out.view(src.shape)
        dst[:, :-1, :fold] = src[:, 1:, :fold]  # from the next frame
        dst[:, -1:, :fold] = 0
        dst[:, 1:, fold : 2 * fold] = src[:, :-1, fold : 2 * fold]  # from the previous one
        dst[:, :1, fold : 2 * fold] = 0
        dst[:, :, 2 * fold :] = src[:, :, 2 * fold :]
        return out


def keep_layout_in_temporal_shifts(model: nn.Module) -> int:
    """Replace every MMAction2 ``TemporalShift`` inside ``model`` (a ``ResNetTSM`` or a
    recognizer holding one) by :class:`LayoutPreservingTemporalShift` with the same
    wrapped module and settings; returns how many were replaced. The outputs do not
    change; a channels-last network stays channels-last through its shifted blocks."""
    replaced = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is TemporalShift:
                swapped = LayoutPreservingTemporalShift(
                    child.net, num_segments=child.num_segments, shift_div=child.shift_div
                )
                swapped.train(child.training)
                setattr(parent, name, swapped)
                replaced += 1
    return replaced
