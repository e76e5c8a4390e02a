# Copyright (c) plugzoo contributors. Apache-2.0.
"""oneDNN inference kernels for :class:`~.sth_conv.STHConv`: the same result, faster on CPU.

Called by :func:`.sth_fast_paths.forward` without autograd on float32 channels-last CPU
input (:func:`can_fuse_add`), in either arrangement:

- each weight is reordered once per input shape into the layout oneDNN's convolution picks
  (:func:`_pack`), and the spatial conv adds its output into the temporal output in place
  (one oneDNN call with a binary add post-op, :func:`_conv_add_`);
- with ``arrangement='masked'`` on input that fits ``max_chunk_bytes``: the temporal centre
  taps are computed in the dense conv's zero blocks, and each off-centre temporal tap is
  added in place, clip by clip (:func:`_masked_inference`).

The oneDNN calls are private PyTorch ops, those TorchInductor uses for frozen CPU
convolutions: ``torch.ops.mkldnn._convolution_pointwise`` (and its in-place ``binary``
overload) and ``torch._C._nn.mkldnn_reorder_conv2d_weight``. Where they are absent, nothing
here applies. Being private, they stay out of what ``plugzoo export`` contributes to
MMAction2: :mod:`.sth_fast_paths` imports this module only where it exists.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from . import sth_fast_paths
from .sth_layout import frames_as_rows, rows_as_frames


def forward(conv, x: torch.Tensor) -> torch.Tensor | None:
    """``conv``'s output for channels-last ``x`` by oneDNN's inference kernels,
    channels-last, or ``None`` where they do not apply (autograd, tracing, not float32
    CPU input, no spatial conv to fuse, a PyTorch build without oneDNN)."""
    if conv.spatial is None or not can_fuse_add(x, conv.spatial.weight, x):
        return None
    masked = conv.arrangement == "masked"
    if masked and conv.temporal is not None and _cache_sized(conv, x):
        return _masked_inference(conv, x)
    yt = _temporal_taps(conv, x) if conv.temporal is not None else None
    # the spatial conv adds its result into the temporal output in place (a oneDNN
    # post-op): no separate pass over the output, no new tensor
    fuse = yt is not None and can_fuse_add(x, conv.spatial.weight, yt)
    if masked:
        return _spatial_taps(conv, x, yt, fuse, masked=True)
    # whole clips per chunk, so that the gathered inputs stay cache-sized
    step = conv._chunk_frames(x)
    chunks = [
        _spatial_taps(conv, x[i : i + step], None if yt is None else yt[i : i + step], fuse)
        for i in range(0, x.shape[0], step)
    ]
    # fused: each chunk was added into its slice of yt
    return yt if fuse else chunks[0] if len(chunks) == 1 else torch.cat(chunks)


def packed_conv2d(owner, conv, x: torch.Tensor) -> torch.Tensor | None:
    """``conv(x)`` for a plain ``Conv2d`` ``conv`` by oneDNN with the weight packed once
    per input shape and kept in ``owner._weight_cache`` (a
    :class:`~.sth_fast_paths.WeightCache`), the way the block's own convs run at inference;
    ``None`` where that does not apply (:func:`can_fuse_add`: autograd, tracing, not
    float32 channels-last CPU input)."""
    if not can_fuse_add(x, conv.weight, x):
        return None
    args = (conv.padding, conv.stride, conv.dilation)
    weight = _packed(owner, "conv", conv.weight, conv.padding, conv.groups, x.shape, *args[1:])
    return _CONV(x, weight, conv.bias, *map(_pair, args), conv.groups, "none", [], "")


def _temporal_taps(conv, x: torch.Tensor) -> torch.Tensor:
    """:meth:`STHConv._temporal_taps` with the weight packed once per input shape."""
    xt = conv._temporal_input(x)
    rows = frames_as_rows(xt, conv.num_segments)
    padding = [conv.temporal_kernel // 2, 0]
    groups = conv.temporal.groups
    weight = _packed(conv, "temporal", conv.temporal.weight, padding, groups, rows.shape)
    yt = _CONV(rows, weight, conv.temporal.bias, padding, [1, 1], [1, 1], groups, "none", [], "")
    return rows_as_frames(yt, *xt.shape[-2:])


def _spatial_taps(
    conv, x: torch.Tensor, yt: torch.Tensor | None, fuse: bool, masked: bool = False
) -> torch.Tensor:
    """Spatial taps of whole clips of channels-last ``x`` plus the temporal output ``yt``
    of the same clips (if any), channels-last; with ``fuse`` written into ``yt``."""
    if masked:
        inputs, weight, groups = x, sth_fast_paths.masked_spatial_weight(conv), 1
    else:
        inputs = conv._gather(x, conv._spatial_index)
        weight, groups = conv.spatial.weight, conv.spatial.groups
    conv_args = (conv.spatial.bias, conv.stride, conv.padding, conv.dilation, groups)
    if fuse:
        name = "masked" if masked else "spatial"
        weight = _packed(
            conv,
            name,
            weight,
            conv.padding,
            groups,
            inputs.shape,
            conv.stride,
            conv.dilation,
            sources=(conv.spatial.weight,),
        )
        return _conv_add_(yt, inputs, weight, *conv_args)
    out = F.conv2d(inputs, weight, *conv_args)
    return out if yt is None else out.add_(yt)


def _cache_sized(conv, x: torch.Tensor) -> bool:
    """Whether input and output of this call fit ``conv.max_chunk_bytes``. The in-place
    temporal taps of :func:`_masked_inference` re-read both once per tap: cheap while they
    stay in cache, not once they have to come from memory."""
    in_bytes = x.numel() * x.element_size()
    out_bytes = in_bytes * conv.out_channels // (conv.in_channels * conv.stride**2)
    return in_bytes + out_bytes <= conv.max_chunk_bytes


def _masked_inference(conv, x: torch.Tensor) -> torch.Tensor:
    """The masked arrangement without autograd (see :func:`can_fuse_add`), for
    channels-last ``x``: one dense conv computes the spatial taps and, in the zero blocks
    of the temporal group pairs, the temporal centre taps (:func:`_folded_weight`); each
    off-centre temporal tap is then added in place by a grouped 1x1 conv per clip that
    reads the frames ``offset`` away (frames-as-rows views: a frame offset is a row offset,
    no shifted copy). Zero padding at clip borders = the rows a tap does not reach. The
    dense conv writes a fresh output (no add post-op), and the 1x1 taps skip the centre
    tap the ``(k_t, 1)`` temporal conv would compute."""
    # weights are packed once into oneDNN's layout for this input shape: no weight
    # reorder per call
    sources = (conv.spatial.weight, conv.temporal.weight)
    conv_args = (conv.padding, conv.stride, conv.dilation)
    weight = _packed(
        conv, "folded", _folded_weight(conv), conv.padding, 1, x.shape, conv.stride,
        conv.dilation, sources=sources,
    )  # fmt: skip
    out = _CONV(x, weight, conv.spatial.bias, *map(_pair, conv_args), 1, "none", [], "")
    rows_in = frames_as_rows(conv._temporal_input(x), conv.num_segments)
    rows_out = frames_as_rows(out, conv.num_segments)
    steps = conv.num_segments
    for tap in range(conv.temporal_kernel):
        offset = tap - conv.temporal_kernel // 2
        if offset == 0 or abs(offset) >= steps:
            continue  # the centre tap is in the conv; beyond the clip: zero padding
        read = slice(max(offset, 0), steps + min(offset, 0))
        write = slice(max(-offset, 0), steps + min(-offset, 0))
        weight = _packed(
            conv,
            f"tap {tap}",
            conv.temporal.weight[:, :, tap : tap + 1],
            0,
            conv.temporal.groups,
            rows_in[:1, :, read].shape,
            sources=sources[1:],
        )
        for clip in range(rows_out.shape[0]):  # one clip: a contiguous block of rows
            _conv_add_(
                rows_out[clip : clip + 1, :, write],
                rows_in[clip : clip + 1, :, read],
                weight,
                None,
                1,  # stride
                0,  # padding
                1,  # dilation
                conv.temporal.groups,
            )
    return out


def _folded_weight(conv) -> torch.Tensor:
    """Inference only: the masked spatial weight
    (:func:`.sth_fast_paths.masked_spatial_weight`) with the temporal centre taps written
    into its zero blocks (the temporal pairs' ``k x k`` centre reads the same pixel as the
    centre tap does), kept until either weight changes."""

    def build():
        weight = sth_fast_paths.build_masked_spatial_weight(conv)
        k, kt = conv.kernel_size // 2, conv.temporal_kernel // 2
        for rows, cols, block in conv._weight_blocks(
            conv.temporal.weight, conv.temporal_input_groups
        ):
            weight[rows, cols, k, k] = block[:, :, kt, 0]
        return weight

    sources = (conv.spatial.weight, conv.temporal.weight)
    return sth_fast_paths.cached(conv, "folded", sources, build)


def _packed(conv, name, weight, padding, groups, shape, stride=1, dilation=1, sources=None):
    """``weight`` packed for oneDNN (:func:`_pack`) for inputs of ``shape``, cached per
    shape until one of ``sources`` (default: ``weight``) changes."""
    return sth_fast_paths.cached(
        conv,
        f"{name} packed {tuple(shape)}",
        (weight,) if sources is None else sources,
        lambda: _pack(weight, padding, stride, dilation, groups, shape),
    )


def can_fuse_add(inputs: torch.Tensor, weight: torch.Tensor, other: torch.Tensor) -> bool:
    """Whether ``conv(inputs, weight) + other`` can be one oneDNN convolution with a
    binary add post-op written into ``other``: inference only (the fused op has no
    backward), float32 on CPU, channels-last tensors, oneDNN present."""
    return (
        _CONV_ADD is not None
        and not (torch.is_grad_enabled() and (inputs.requires_grad or weight.requires_grad))
        and not torch.jit.is_tracing()
        and not sth_fast_paths.compiling()
        and inputs.device.type == "cpu"
        and inputs.dtype == weight.dtype == other.dtype == torch.float32
        and other.is_contiguous(memory_format=torch.channels_last)
    )


def _pair(value) -> list:
    """A conv setting as oneDNN's ops take it: ``[h, w]``."""
    return list(value) if isinstance(value, (list, tuple)) else [value, value]


def _conv_add_(other, inputs, weight, bias, stride, padding, dilation, groups):
    """``other += conv2d(inputs, weight, bias)`` in one oneDNN call; returns ``other``."""
    return _CONV_ADD(
        other,
        inputs,
        weight,
        bias,
        _pair(padding),
        _pair(stride),
        _pair(dilation),
        groups,
        "add",
        None,
        None,
        [],
        None,
    )


# TorchInductor's oneDNN ops: conv + add in place, plain conv, weight packing; absent in
# builds without oneDNN
_ONEDNN = torch.backends.mkldnn.is_available() and hasattr(
    torch.ops.mkldnn, "_convolution_pointwise_"
)
_CONV_ADD = torch.ops.mkldnn._convolution_pointwise_.binary if _ONEDNN else None
_CONV = torch.ops.mkldnn._convolution_pointwise.default if _ONEDNN else None


def _pack(weight, padding, stride, dilation, groups, input_shape) -> torch.Tensor:
    """``weight`` in the layout oneDNN's conv picks for ``input_shape`` (an opaque
    oneDNN tensor, as TorchInductor's frozen weights): the conv then skips its per-call
    weight reorder. Used by :data:`_CONV` and :data:`_CONV_ADD` alike."""
    return torch._C._nn.mkldnn_reorder_conv2d_weight(
        weight.contiguous().to_mkldnn(),
        _pair(padding),
        _pair(stride),
        _pair(dilation),
        groups,
        list(input_shape),
    )
