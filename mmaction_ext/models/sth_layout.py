# Copyright (c) plugzoo contributors. Apache-2.0.
"""Views of MMAction2's ``[N * T, C, H, W]`` frames used by the STH operators and their fast
paths: the pixels the temporal taps read, and the frames of a clip seen as image rows."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """The output length of a convolution along one axis."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def centre_taps(x: torch.Tensor, kernel: int, stride: int, padding: int, dilation: int):
    """The input pixels at the centres of the ``kernel x kernel`` windows the replaced
    spatial conv would use: what the 1x1 temporal taps read. Subsampling here, before
    the temporal conv, moves ``stride**2`` times fewer pixels than a strided Conv3d."""
    h, w = x.shape[-2:]
    offset = dilation * (kernel // 2) - padding
    h_out = output_size(h, kernel, stride, padding, dilation)
    w_out = output_size(w, kernel, stride, padding, dilation)
    if not (offset == 0 and -(-h // stride) == h_out and -(-w // stride) == w_out):
        lead = -offset  # F.pad with negative amounts crops
        trail_h = (h_out - 1) * stride + 1 - (h + lead)
        trail_w = (w_out - 1) * stride + 1 - (w + lead)
        x = F.pad(x, (lead, trail_w, lead, trail_h))
    return x[..., ::stride, ::stride] if stride > 1 else x


def frames_as_rows(x: torch.Tensor, num_segments: int) -> torch.Tensor:
    """``[N*T, C, H, W]`` stored channels-last, viewed (no copy) as ``[N, C, T, H*W]``
    stored channels-last: time becomes the image's row axis, so a ``(k_t, 1)`` Conv2d
    applies the temporal taps of a ``(k_t, 1, 1)`` Conv3d without a transposed copy."""
    nt, c, h, w = x.shape
    # [N*T, C, H, W] (memory N*T, H, W, C) -> [N, T, H*W, C] -> [N, C, T, H*W]
    return (
        x.permute(0, 2, 3, 1)
        .reshape(nt // num_segments, num_segments, h * w, c)
        .permute(0, 3, 1, 2)
    )


def rows_as_frames(y: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`frames_as_rows`: ``[N, C, T, H*W]`` -> ``[N*T, C, H, W]``."""
    n, c, t, _ = y.shape
    # [N, C, T, H*W] (memory N, T, H*W, C) -> [N*T, H, W, C] -> [N*T, C, H, W]
    return y.permute(0, 2, 3, 1).reshape(n * t, h, w, c).permute(0, 3, 1, 2)
