# Copyright (c) plugzoo contributors. Apache-2.0.
"""Faster ways to compute :class:`~.sth_conv.STHConv`, with the same result.

:meth:`STHConv.forward <.sth_conv.STHConv.forward>` calls :func:`forward` first and applies
its own two convs (``spatial`` and ``temporal``) where it returns ``None``: with autograd in
the ``'grouped'`` arrangement, while tracing with ``trace_path='counted'`` (the FLOP counters
then see the block's own multiply-adds; with ``'fast'``, :func:`_traced` records the
arrangement in plain operators), and where oneDNN cannot run the input (not float32, not on
the CPU, or a PyTorch build without oneDNN) in the ``'grouped'`` arrangement. The paths here:

- ``arrangement='masked'``: the spatial taps as one dense ``k x k`` conv over the whole
  input, no gather. Its weight is ``spatial.weight`` spread over ``[C_out, C_in, k, k]``,
  zero in the temporal (output, input) group pairs (:func:`_masked_spatial_weight`): built
  at each call with autograd, so that gradients reach ``spatial.weight``, cached otherwise.
- Inference (no autograd, float32 on the CPU, oneDNN present), either arrangement: each
  weight is reordered once per input shape into the layout oneDNN's convolution picks
  (:func:`_pack`), and the spatial conv adds its output into the temporal output in place
  (one oneDNN call with a binary add post-op, :func:`_conv_add_`).
- Inference with ``arrangement='masked'`` on input that fits ``max_chunk_bytes``: the
  temporal centre taps are computed in the dense conv's zero blocks, and each off-centre
  temporal tap is added in place, clip by clip (:func:`_masked_inference`).

The oneDNN calls are private PyTorch ops, those TorchInductor uses for frozen CPU
convolutions: ``torch.ops.mkldnn._convolution_pointwise`` (and its in-place ``binary``
overload) and ``torch._C._nn.mkldnn_reorder_conv2d_weight``. Where they are absent, the
inference paths are skipped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .sth_layout import frames_as_rows, rows_as_frames


def choose_arrangement(conv, arrangement: str, conv_groups: int) -> str:
    """``conv``'s arrangement: ``'auto'`` -> ``'masked'`` or ``'grouped'``, by rule.

    ``'masked'`` where the spatial input groups rotate (``conv_groups > 1``) and each output
    group has fewer than 32 channels: there oneDNN's grouped conv runs its narrow groups at
    a lower multiply-add rate than its dense conv, enough for the dense conv with a
    fraction ``r`` of zero taps to finish first (``tools/analysis_tools/sth_efficiency.py``
    times both). Without rotation the spatial taps are already one dense conv, and a block
    without spatial taps has nothing to mask: both are ``'grouped'``.
    """
    if arrangement != "auto":
        return arrangement if conv.spatial is not None else "grouped"
    narrow = conv.out_channels // conv.num_groups < 32
    return "masked" if conv.spatial is not None and conv_groups > 1 and narrow else "grouped"


def prepare(conv) -> None:
    """Give ``conv`` what its fast paths keep: the derived-weight cache and, for the masked
    arrangement, the slot index of :func:`_slot_index` (a buffer, so it follows the
    module's device; not saved)."""
    conv._weight_cache = WeightCache()  # name -> (key, weight), see _cached
    if conv.arrangement == "masked":
        conv.register_buffer("_masked_slots", _slot_index(conv), persistent=False)


def forward(conv, x: torch.Tensor) -> torch.Tensor | None:
    """``conv``'s output for channels-last ``x`` by a fast path, channels-last, or ``None``
    where none applies (see the module docstring)."""
    if _compiling():  # TorchDynamo captures plain operators only
        return _traced(conv, x)
    if torch.jit.is_tracing():
        return _traced(conv, x) if conv.trace_path == "fast" else None
    masked = conv.arrangement == "masked"
    if (
        masked
        and conv.temporal is not None
        and _cache_sized(conv, x)
        and _can_fuse_add(x, conv.spatial.weight, x)
    ):
        return _masked_inference(conv, x)
    # inference with a spatial conv to fuse: both convs take packed weights
    packed = conv.spatial is not None and _can_fuse_add(x, conv.spatial.weight, x)
    if not (masked or packed):
        return None
    # from here on conv.spatial exists: the masked arrangement needs spatial taps
    yt = _temporal_taps(conv, x, packed) if conv.temporal is not None else None
    # without autograd, the spatial conv adds its result into the temporal output in
    # place (a oneDNN post-op): no separate pass over the output, no new tensor
    fuse = yt is not None and _can_fuse_add(x, conv.spatial.weight, yt)
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


def _traced(conv, x: torch.Tensor) -> torch.Tensor:
    """The block in plain operators for ``torch.jit.trace`` (``trace_path='fast'``) and
    ``torch.compile``: the arrangement's computation with every derived weight built from
    the parameters by recorded operators (``torch.jit.freeze`` folds them into constants),
    and no concatenation. The oneDNN packed weights and in-place taps cannot be recorded;
    a freezing compiler packs weights itself."""
    yt = conv._temporal_taps(x) if conv.temporal is not None else None
    if conv.spatial is None:
        return yt
    conv_args = (conv.spatial.bias, conv.stride, conv.padding, conv.dilation)
    if conv.arrangement == "masked":
        out = F.conv2d(x, _build_masked_spatial_weight(conv), *conv_args)
        return out if yt is None else out.add_(yt)
    if yt is None:
        return conv.spatial(conv._gather(x, conv._spatial_index))
    # each chunk of whole clips is added into its slice of the temporal output
    step = conv._chunk_frames(x)
    for i in range(0, x.shape[0], step):
        ys = conv.spatial(conv._gather(x[i : i + step], conv._spatial_index))
        yt[i : i + step].add_(ys)
    return yt


def packed_conv2d(owner, conv, x: torch.Tensor) -> torch.Tensor | None:
    """``conv(x)`` for a plain ``Conv2d`` ``conv`` by oneDNN with the weight packed once
    per input shape and kept in ``owner._weight_cache`` (a :class:`WeightCache`), the way
    the block's own convs run at inference; ``None`` where that does not apply
    (:func:`_can_fuse_add`: autograd, tracing, not float32 channels-last CPU input)."""
    if not _can_fuse_add(x, conv.weight, x):
        return None
    args = (conv.padding, conv.stride, conv.dilation)
    weight = _packed(owner, "conv", conv.weight, conv.padding, conv.groups, x.shape, *args[1:])
    return _CONV(x, weight, conv.bias, *map(_pair, args), conv.groups, "none", [], "")


def _temporal_taps(conv, x: torch.Tensor, packed: bool) -> torch.Tensor:
    """:meth:`STHConv._temporal_taps`; with ``packed`` (inference, oneDNN) the weight is
    packed once per input shape."""
    if not packed:
        return conv._temporal_taps(x)
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
        inputs, weight, groups = x, _masked_spatial_weight(conv), 1
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
    """The masked arrangement without autograd (see :func:`_can_fuse_add`), for
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


# --- derived weights ---------------------------------------------------------------------


def _slot_index(conv) -> torch.Tensor:
    """``[G, G]``: entry ``(g, i)`` is the slot of input group ``i`` in output group
    ``g``'s row of the spatial weight extended by one zero block (slot ``G - tG``) for the
    groups it sees temporally."""
    G = conv.num_groups
    slots = torch.full((G, G), G - conv.temporal_groups, dtype=torch.long)
    for g in range(G):
        for m, i in enumerate(conv.spatial_input_groups(g)):
            slots[g, i] = m
    return slots


def _masked_spatial_weight(conv) -> torch.Tensor:
    """The spatial taps as a dense ``[C_out, C_in, k, k]`` weight, zero in the temporal
    group pairs; built by indexing, so gradients flow to ``spatial.weight``. Without
    autograd it is kept until ``spatial.weight`` changes (its version counter moves with
    every in-place update: optimiser steps, ``load_state_dict``)."""
    weight = conv.spatial.weight
    if torch.is_grad_enabled() and weight.requires_grad:
        return _build_masked_spatial_weight(conv)
    return _cached(conv, "masked", (weight,), lambda: _build_masked_spatial_weight(conv))


def _build_masked_spatial_weight(conv) -> torch.Tensor:
    G, k = conv.num_groups, conv.kernel_size
    weight = conv.spatial.weight
    blocks = weight.view(G, conv.out_channels // G, -1, conv.in_channels // G, k, k)
    blocks = torch.cat([blocks, blocks.new_zeros(1).expand_as(blocks[:, :, :1])], dim=2)
    rows = torch.arange(G, device=weight.device).unsqueeze(1)
    # [G, G(input groups), C_out/G, C_in/G, k, k] -> [C_out, C_in, k, k]
    dense = blocks[rows, :, conv._masked_slots].permute(0, 2, 1, 3, 4, 5)
    return dense.reshape(conv.out_channels, conv.in_channels, k, k)


def _folded_weight(conv) -> torch.Tensor:
    """Inference only: :func:`_masked_spatial_weight` with the temporal centre taps
    written into its zero blocks (the temporal pairs' ``k x k`` centre reads the same
    pixel as the centre tap does), kept until either weight changes."""

    def build():
        weight = _build_masked_spatial_weight(conv)
        k, kt = conv.kernel_size // 2, conv.temporal_kernel // 2
        for rows, cols, block in conv._weight_blocks(
            conv.temporal.weight, conv.temporal_input_groups
        ):
            weight[rows, cols, k, k] = block[:, :, kt, 0]
        return weight

    return _cached(conv, "folded", (conv.spatial.weight, conv.temporal.weight), build)


def _cached(conv, name: str, sources, build) -> torch.Tensor:
    """``build()`` without autograd, kept in ``conv``'s cache under ``name`` and rebuilt
    only when a tensor of ``sources`` changed (storage, version counter: optimiser steps
    and ``load_state_dict`` move it)."""
    key = tuple((w.data_ptr(), w._version, w.dtype, w.device) for w in sources)
    cache = conv._weight_cache
    if cache.get(name, (None,))[0] != key:
        with torch.no_grad():
            cache[name] = (key, build())
    return cache[name][1]


def _packed(conv, name, weight, padding, groups, shape, stride=1, dilation=1, sources=None):
    """``weight`` packed for oneDNN (:func:`_pack`) for inputs of ``shape``, cached per
    shape until one of ``sources`` (default: ``weight``) changes."""
    return _cached(
        conv,
        f"{name} packed {tuple(shape)}",
        (weight,) if sources is None else sources,
        lambda: _pack(weight, padding, stride, dilation, groups, shape),
    )


class WeightCache(dict):
    """Weights derived from the parameters, rebuilt on demand. A copy or a pickle of the
    module starts empty: packed oneDNN tensors can be neither copied nor saved."""

    def __deepcopy__(self, memo):
        return WeightCache()

    def __reduce__(self):
        return (WeightCache, ())


# --- oneDNN ------------------------------------------------------------------------------


def _can_fuse_add(inputs: torch.Tensor, weight: torch.Tensor, other: torch.Tensor) -> bool:
    """Whether ``conv(inputs, weight) + other`` can be one oneDNN convolution with a
    binary add post-op written into ``other``: inference only (the fused op has no
    backward), float32 on CPU, channels-last tensors, oneDNN present."""
    return (
        _CONV_ADD is not None
        and not (torch.is_grad_enabled() and (inputs.requires_grad or weight.requires_grad))
        and not torch.jit.is_tracing()
        and not _compiling()
        and inputs.device.type == "cpu"
        and inputs.dtype == weight.dtype == other.dtype == torch.float32
        and other.is_contiguous(memory_format=torch.channels_last)
    )


def _compiling() -> bool:
    """Whether TorchDynamo is capturing the call (``torch.compile``); torch before 2.3 has
    no way to ask, and its users run eagerly."""
    is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return bool(is_compiling is not None and is_compiling())


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
