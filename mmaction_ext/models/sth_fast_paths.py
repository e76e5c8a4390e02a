# Copyright (c) plugzoo contributors. Apache-2.0.
"""Faster ways to compute :class:`~.sth_conv.STHConv`, with the same result.

:meth:`STHConv.forward <.sth_conv.STHConv.forward>` calls :func:`forward` first and applies
its own two convs (``spatial`` and ``temporal``) where it returns ``None``: in the
``'grouped'`` arrangement, and while tracing with ``trace_path='counted'`` (the FLOP
counters then see the block's own multiply-adds; with ``'fast'``, :func:`_traced` records
the arrangement in plain operators). The paths here:

- ``arrangement='masked'``: the spatial taps as one dense ``k x k`` conv over the whole
  input, no gather. Its weight is ``spatial.weight`` spread over ``[C_out, C_in, k, k]``,
  zero in the temporal (output, input) group pairs (:func:`masked_spatial_weight`): built
  at each call with autograd, so that gradients reach ``spatial.weight``, cached otherwise.
- Inference (no autograd, float32 on the CPU), either arrangement, before the others:
  oneDNN's kernels with packed weights and fused adds, in :mod:`.sth_onednn`. They call
  private PyTorch ops, so that module is optional: where it is absent, inference runs the
  plain operators here and in ``STHConv``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

try:  # oneDNN's inference kernels: private torch ops, an optional module
    import mmaction_ext.models.sth_onednn as sth_onednn
except ModuleNotFoundError as missing:
    if missing.name != "mmaction_ext.models.sth_onednn":
        raise  # sth_onednn is there: a module it imports is missing
    sth_onednn = None


def choose_arrangement(conv, arrangement: str, conv_groups: int) -> str:
    """``conv``'s arrangement: ``'auto'`` -> ``'masked'`` or ``'grouped'``, by rule.

    ``'masked'`` where the spatial input groups rotate (``conv_groups > 1``) and each output
    group has fewer than 32 channels: there oneDNN's grouped conv runs its narrow groups at
    a lower multiply-add rate than its dense conv, enough for the dense conv with a
    fraction ``r`` of zero taps to finish first (both timed on CPU). Without rotation the
    spatial taps are already one dense conv, and a block without spatial taps has nothing
    to mask: both are ``'grouped'``.
    """
    if arrangement != "auto":
        return arrangement if conv.spatial is not None else "grouped"
    narrow = conv.out_channels // conv.num_groups < 32
    return "masked" if conv.spatial is not None and conv_groups > 1 and narrow else "grouped"


def prepare(conv) -> None:
    """Give ``conv`` what its fast paths keep: the derived-weight cache and, for the masked
    arrangement, the slot index of :func:`_slot_index` (a buffer, so it follows the
    module's device; not saved)."""
    conv._weight_cache = WeightCache()  # name -> (key, weight), see cached
    if conv.arrangement == "masked":
        conv.register_buffer("_masked_slots", _slot_index(conv), persistent=False)


def forward(conv, x: torch.Tensor) -> torch.Tensor | None:
    """``conv``'s output for channels-last ``x`` by a fast path, channels-last, or ``None``
    where none applies (see the module docstring)."""
    if compiling():  # TorchDynamo captures plain operators only
        return _traced(conv, x)
    if torch.jit.is_tracing():
        return _traced(conv, x) if conv.trace_path == "fast" else None
    if sth_onednn is not None:
        out = sth_onednn.forward(conv, x)
        if out is not None:
            return out
    if conv.arrangement != "masked":
        return None
    # from here on conv.spatial exists: the masked arrangement needs spatial taps
    yt = conv._temporal_taps(x) if conv.temporal is not None else None
    conv_args = (conv.spatial.bias, conv.stride, conv.padding, conv.dilation)
    out = F.conv2d(x, masked_spatial_weight(conv), *conv_args)
    return out if yt is None else out.add_(yt)


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
        out = F.conv2d(x, build_masked_spatial_weight(conv), *conv_args)
        return out if yt is None else out.add_(yt)
    if yt is None:
        return conv.spatial(conv._gather(x, conv._spatial_index))
    # each chunk of whole clips is added into its slice of the temporal output
    step = conv._chunk_frames(x)
    for i in range(0, x.shape[0], step):
        ys = conv.spatial(conv._gather(x[i : i + step], conv._spatial_index))
        yt[i : i + step].add_(ys)
    return yt


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


def masked_spatial_weight(conv) -> torch.Tensor:
    """The spatial taps as a dense ``[C_out, C_in, k, k]`` weight, zero in the temporal
    group pairs; built by indexing, so gradients flow to ``spatial.weight``. Without
    autograd it is kept until ``spatial.weight`` changes (its version counter moves with
    every in-place update: optimiser steps, ``load_state_dict``)."""
    weight = conv.spatial.weight
    if torch.is_grad_enabled() and weight.requires_grad:
        return build_masked_spatial_weight(conv)
    return cached(conv, "masked", (weight,), lambda: build_masked_spatial_weight(conv))


def build_masked_spatial_weight(conv) -> torch.Tensor:
    """:func:`masked_spatial_weight` built anew, in recorded operators."""
    G, k = conv.num_groups, conv.kernel_size
    weight = conv.spatial.weight
    blocks = weight.view(G, conv.out_channels // G, -1, conv.in_channels // G, k, k)
    blocks = torch.cat([blocks, blocks.new_zeros(1).expand_as(blocks[:, :, :1])], dim=2)
    rows = torch.arange(G, device=weight.device).unsqueeze(1)
    # [G, G(input groups), C_out/G, C_in/G, k, k] -> [C_out, C_in, k, k]
    dense = blocks[rows, :, conv._masked_slots].permute(0, 2, 1, 3, 4, 5)
    return dense.reshape(conv.out_channels, conv.in_channels, k, k)


def cached(conv, name: str, sources, build) -> torch.Tensor:
    """``build()`` without autograd, kept in ``conv``'s cache under ``name`` and rebuilt
    only when a tensor of ``sources`` changed (storage, version counter: optimiser steps
    and ``load_state_dict`` move it)."""
    key = tuple((w.data_ptr(), w._version, w.dtype, w.device) for w in sources)
    cache = conv._weight_cache
    if cache.get(name, (None,))[0] != key:
        with torch.no_grad():
            cache[name] = (key, build())
    return cache[name][1]


class WeightCache(dict):
    """Weights derived from the parameters, rebuilt on demand. A copy or a pickle of the
    module starts empty: packed oneDNN tensors can be neither copied nor saved."""

    def __deepcopy__(self, memo):
        """An empty cache: the copy rebuilds its weights."""
        return WeightCache()

    def __reduce__(self):
        """Pickled empty: packed weights cannot be saved."""
        return (WeightCache, ())


def compiling() -> bool:
    """Whether TorchDynamo is capturing the call (``torch.compile``); torch before 2.3 has
    no way to ask, and its users run eagerly."""
    is_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return bool(is_compiling is not None and is_compiling())
