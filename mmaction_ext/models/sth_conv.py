# Copyright (c) plugzoo contributors. Apache-2.0.
"""STH-Conv: spatial and temporal taps interleaved inside one convolution.

The block of `STH: Spatio-Temporal Hybrid Convolution for Efficient Action Recognition
<https://arxiv.org/abs/2003.08042>`_, reconstructed from the paper's abstract (its body is not
public). Input and output channels are split into ``num_groups`` (G) groups. Output group
``g`` sees ``temporal_groups`` (tG) of the input groups through a ``temporal_kernel x 1 x 1``
kernel and the other input groups through the ``k x k`` spatial kernel of the conv it
replaces; with ``interleave=True`` the temporal input groups of output group ``g`` are
``(g + j) mod G, j < tG``, so every input channel is seen temporally by some filters and
spatially by the others. Weights: ``C_out * C_in * (k*k*(1 - r) + k_t*r)``, ``r = tG / G``.
The block equals a ``(k_t, k, k)`` Conv3d whose weight is masked: spatial (output, input)
group pairs keep only the centre temporal slice, temporal pairs only the centre pixel
(:meth:`STHConv.dense_equivalent_weight`).

This module holds the operators as plain convolutions; the faster ways to compute
:class:`STHConv` are in :mod:`.sth_fast_paths` (its ``arrangement``, in plain operators).

oneDNN's inference kernels, which call private torch ops, are in :mod:`.sth_onednn`
(optional).
"""

from __future__ import annotations

import torch
import torch.nn as nn
from mmaction.registry import MODELS

from . import sth_fast_paths
from .sth_layout import centre_taps, frames_as_rows, rows_as_frames


def _kaiming_normal_(weight: torch.Tensor, fan: int) -> None:
    """He-normal with the ReLU gain for a layer whose fan (in or out) is ``fan``."""
    nn.init.normal_(weight, std=(2.0 / fan) ** 0.5)


def _check_segments(nt: int, num_segments: int, layer: str) -> None:
    """Refuse a batch of ``nt`` frames that is not whole clips of ``num_segments``."""
    if nt % num_segments:
        raise ValueError(
            f"{layer}: the batch holds {nt} frames, not a multiple of "
            f"num_segments={num_segments}; frames of different clips would mix in the "
            "temporal taps. Set num_segments to the clip length the pipeline samples."
        )


def _check_sth_arguments(
    layer: str,
    channels: dict[str, int],
    kernel_size: int,
    num_groups: int,
    temporal_groups: int,
    temporal_kernel: int,
    temporal_init: str,
) -> None:
    """Refuse an STH configuration at build time, naming the argument at fault."""
    if kernel_size < 3 or kernel_size % 2 == 0:
        raise ValueError(
            f"{layer}: kernel_size must be odd and > 1 (a 1x1 conv would grow), got {kernel_size}"
        )
    if num_groups < 1 or any(count % num_groups for count in channels.values()):
        counts = " and ".join(f"{name}={count}" for name, count in channels.items())
        raise ValueError(f"{layer}: num_groups={num_groups} must divide {counts}")
    if not 0 <= temporal_groups <= num_groups:
        raise ValueError(
            f"{layer}: temporal_groups must be in [0, num_groups={num_groups}], "
            f"got {temporal_groups}"
        )
    if temporal_kernel < 3 or temporal_kernel % 2 == 0:
        raise ValueError(
            f"{layer}: temporal_kernel must be odd and >= 3, got {temporal_kernel} "
            "(a temporal kernel of 1 sees no other frame: the block would model no time)"
        )
    if temporal_init not in ("static", "random"):
        raise ValueError(
            f"{layer}: temporal_init must be 'static' or 'random', got {temporal_init!r}"
        )


def _pair_to_int(value, name: str) -> int:
    """STH needs square kernels and equal strides/paddings/dilations in H and W."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2 or value[0] != value[1]:
            raise ValueError(f"STHConv: {name} must be an int or an equal pair, got {value}")
        value = value[0]
    return int(value)


@MODELS.register_module()
class STHConv(nn.Module):
    """Spatio-temporal hybrid convolution, a drop-in for a ``k x k`` 2D conv of a 2D CNN.

    This block is proposed in `STH: Spatio-Temporal Hybrid Convolution for Efficient Action
    Recognition <https://arxiv.org/abs/2003.08042>`_.

    Input and output use MMAction2's ``[N * num_segments, C, H, W]`` layout, and the output
    is stored in the input's memory format, as ``nn.Conv2d`` does. The parameters hold
    exactly the counted weights, in two convs: ``spatial``, the ``k x k`` spatial taps (one
    ``Conv2d``, grouped by output group when the spatial input groups rotate), and
    ``temporal``, the temporal taps (one ``(k_t, 1)`` ``Conv2d`` over the frames of each
    clip seen as image rows, see :func:`~.sth_layout.frames_as_rows`). :meth:`forward`
    applies these two convs and sums their outputs; :mod:`.sth_fast_paths` replaces that
    computation by a faster one with the same result where one applies (the
    ``arrangement='masked'`` dense conv, oneDNN's inference kernels where present). Inside,
    the block runs channels-last: a channels-first input pays two layout copies;
    ``ResNetSTH`` runs channels-last end to end and pays them once, at its boundary.

    Weight layout: row block ``g`` (output group ``g``) of ``spatial.weight`` holds the
    input groups :meth:`spatial_input_groups` ``(g)`` in that order, and row block ``g`` of
    ``temporal.weight`` the groups :meth:`temporal_input_groups` ``(g)``.

    Args:
        in_channels (int): Input channels; divisible by ``num_groups``.
        out_channels (int): Output channels; divisible by ``num_groups``.
        kernel_size (int): Spatial kernel ``k`` of the replaced conv (odd, > 1).
        stride (int): Spatial stride, shared by the temporal taps. Defaults to 1.
        padding (int): Spatial padding of the replaced conv. Defaults to 1.
        dilation (int): Spatial dilation of the replaced conv. Defaults to 1.
        groups (int): Accepted because MMCV's ``ConvModule`` passes it; only 1 (a dense
            conv) can be replaced.
        bias (bool): Add a bias per output channel. Defaults to False.
        num_segments (int): Frames per clip (T). Defaults to 8.
        num_groups (int): Channel groups G. Defaults to 4.
        temporal_groups (int): Input groups each output group sees temporally (tG,
            ``0 <= tG <= G``); ``0`` makes the block the 2D conv. Defaults to 1.
        interleave (bool): Rotate the temporal input groups from output group to output
            group; ``False`` uses input groups ``0..tG-1`` for every output group (the
            fixed-split ablation). Defaults to True.
        temporal_kernel (int): Temporal taps k_t (odd, >= 3), zero-padded at clip
            borders. Defaults to 3.
        temporal_init (str): Initialisation of the temporal taps (assumption: the paper's
            is not public). ``'static'``: zero at random init (the block starts as a
            per-frame spatial conv), and the replaced 2D kernel's sum on the centre tap in
            :meth:`load_2d_weight`; ``'random'``: every tap random. See
            :meth:`init_weights`. Defaults to ``'static'``.
        max_chunk_bytes (int): The spatial taps of the ``'grouped'`` arrangement run on
            chunks of whole clips whose gathered input stays under this size (cache-sized
            temporaries instead of page-faulting ones); without autograd, the
            ``'masked'`` arrangement adds the off-centre temporal taps in place when input
            and output together stay under it. A speed setting, the result is the same.
            Defaults to 16 MiB.
        arrangement (str): How the spatial taps run (a speed setting; the result, the
            parameters and the counted FLOPs are the same). ``'grouped'``: the ``spatial``
            conv over the gathered input groups of each output group. ``'masked'``: one
            dense ``k x k`` ``Conv2d`` over the input as it is, whose weight is
            ``spatial.weight`` spread over a ``[C_out, C_in, k, k]`` tensor with zeros in
            the temporal (output, input) group pairs: ``1 / (1 - r)`` times the spatial
            multiply-adds, but no gather and the dense conv's kernel. With autograd that
            weight is rebuilt at each call, so that gradients reach ``spatial.weight``;
            without, it is cached until a weight changes. ``'auto'`` (default):
            ``'masked'`` when the spatial input groups rotate and each output group has
            fewer than 32 channels, else ``'grouped'``
            (:func:`.sth_fast_paths.choose_arrangement`). A block without spatial taps is
            always ``'grouped'``.
        trace_path (str): What ``torch.jit.trace`` records. ``'counted'`` (default): the
            two plain convs, exactly the block's multiply-adds (mmengine's FLOP counter
            traces the model). ``'fast'``: the arrangement's computation in plain
            operators, its derived weights built from the parameters, for a compiler to
            freeze (oneDNN's inference kernels, where present, cannot be recorded). The result is
            the same.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        groups: int = 1,
        bias: bool = False,
        num_segments: int = 8,
        num_groups: int = 4,
        temporal_groups: int = 1,
        interleave: bool = True,
        temporal_kernel: int = 3,
        temporal_init: str = "static",
        max_chunk_bytes: int = 16 * 2**20,
        arrangement: str = "auto",
        trace_path: str = "counted",
    ) -> None:
        super().__init__()
        kernel_size = _pair_to_int(kernel_size, "kernel_size")
        stride = _pair_to_int(stride, "stride")
        padding = _pair_to_int(padding, "padding")
        dilation = _pair_to_int(dilation, "dilation")
        if groups != 1:
            raise ValueError(f"STHConv replaces dense convs only (groups=1), got groups={groups}")
        _check_sth_arguments(
            "STHConv",
            dict(in_channels=in_channels, out_channels=out_channels),
            kernel_size,
            num_groups,
            temporal_groups,
            temporal_kernel,
            temporal_init,
        )
        if num_segments < 1:
            raise ValueError(f"STHConv: num_segments must be >= 1, got {num_segments}")
        if arrangement not in ("auto", "grouped", "masked"):
            raise ValueError(
                f"STHConv: arrangement must be 'auto', 'grouped' or 'masked', got {arrangement!r}"
            )

        if trace_path not in ("counted", "fast"):
            raise ValueError(f"STHConv: trace_path must be 'counted' or 'fast', got {trace_path!r}")

        self.in_channels = in_channels
        self.out_channels = out_channels
        self.trace_path = trace_path
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = padding
        self.dilation = dilation
        self.num_segments = num_segments
        self.num_groups = num_groups
        self.temporal_groups = temporal_groups
        self.interleave = interleave
        self.temporal_kernel = temporal_kernel
        self.temporal_init = temporal_init
        self.max_chunk_bytes = max_chunk_bytes
        # read by mmcv's ConvModule from the conv it wraps
        self.groups = 1
        self.transposed = False
        self.output_padding = (0, 0)

        G, tG = num_groups, temporal_groups
        in_group = in_channels // G
        # With rotation each output group reads its own input groups: one grouped conv
        # over the gathered groups. Without, all output groups read the same ones.
        rotating = interleave and 0 < tG < G
        conv_groups = G if rotating else 1
        self.spatial = None
        self._spatial_index = self._temporal_index = None
        if tG < G:
            self.spatial = nn.Conv2d(
                (G - tG) * in_group * conv_groups,
                out_channels,
                kernel_size,
                stride,
                padding,
                dilation,
                groups=conv_groups,
                bias=bias,
            )
            self._set_index("_spatial_index", self.spatial_input_groups, conv_groups)
        self.temporal = None
        if tG:
            self.temporal = nn.Conv2d(
                tG * in_group * conv_groups,
                out_channels,
                (temporal_kernel, 1),
                padding=(temporal_kernel // 2, 0),
                groups=conv_groups,
                bias=bias and self.spatial is None,
            )
            self._set_index("_temporal_index", self.temporal_input_groups, conv_groups)
        self.arrangement = sth_fast_paths.choose_arrangement(self, arrangement, conv_groups)
        sth_fast_paths.prepare(self)
        self.init_weights()

    # --- layout ------------------------------------------------------------------------

    def temporal_input_groups(self, out_group: int) -> list[int]:
        """Input groups that output group ``out_group`` sees through temporal taps, in the
        order its temporal weight stores them."""
        G, tG = self.num_groups, self.temporal_groups
        if self.interleave and 0 < tG < G:
            return [(out_group + j) % G for j in range(tG)]
        return list(range(tG))

    def spatial_input_groups(self, out_group: int) -> list[int]:
        """Input groups that output group ``out_group`` sees through spatial taps, in the
        order its spatial weight stores them."""
        G, tG = self.num_groups, self.temporal_groups
        if self.interleave and 0 < tG < G:
            return [(out_group + tG + m) % G for m in range(G - tG)]
        return list(range(tG, G))

    def _set_index(self, name: str, input_groups, conv_groups: int) -> None:
        """Keep what a conv reads (:meth:`_gather_index`) as attribute ``name``."""
        index = self._gather_index(input_groups, conv_groups)
        if isinstance(index, torch.Tensor):  # a buffer, so it follows the module's device
            delattr(self, name)
            self.register_buffer(name, index, persistent=False)
        else:
            setattr(self, name, index)

    def _gather_index(self, input_groups, conv_groups: int) -> torch.Tensor | slice | None:
        """What a conv with ``conv_groups`` groups reads: ``None`` (all of ``x``), a
        channel slice, or the input group ids to gather, in order."""
        size = self.in_channels // self.num_groups
        groups = [i for g in range(conv_groups) for i in input_groups(g)]
        if groups == list(range(self.num_groups)):
            return None
        if groups == list(range(groups[0], groups[0] + len(groups))):
            return slice(groups[0] * size, (groups[-1] + 1) * size)
        return torch.tensor(groups)

    def _weight_blocks(self, weight: torch.Tensor, input_groups):
        """``(rows, cols, block)`` per output group and input group: ``block`` is the view
        of ``weight`` holding the pair (output group rows, input group ``cols`` of the
        replaced conv)."""
        G = self.num_groups
        in_group, out_group = self.in_channels // G, self.out_channels // G
        for g in range(G):
            rows = slice(g * out_group, (g + 1) * out_group)
            for m, i in enumerate(input_groups(g)):
                cols = slice(i * in_group, (i + 1) * in_group)
                yield rows, cols, weight[rows, m * in_group : (m + 1) * in_group]

    @property
    def temporal_ratio(self) -> float:
        """r = temporal_groups / num_groups."""
        return self.temporal_groups / self.num_groups

    def extra_repr(self) -> str:
        """The settings ``print(module)`` shows."""
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"num_segments={self.num_segments}, num_groups={self.num_groups}, "
            f"temporal_groups={self.temporal_groups}, interleave={self.interleave}, "
            f"temporal_kernel={self.temporal_kernel}, arrangement={self.arrangement!r}"
        )

    # --- initialisation ----------------------------------------------------------------

    @torch.no_grad()
    def init_weights(self, mode: str = "fan_in") -> None:
        """He-normal from the fan of the whole block, not of its convs.

        Each tap is initialised as in the dense conv over all inputs it belongs to: the
        spatial taps with std ``sqrt(2 / (C * k * k))``, the temporal ones with
        ``sqrt(2 / (C * k_t))``, ``C = in_channels`` (``mode='fan_in'``) or
        ``out_channels`` (``'fan_out'``, as MMAction2's ResNet initialises its convs). On
        unit-variance input the block's output variance is then the dense ``k x k``
        conv's (``2 * C_in / C``), of which the temporal path carries the share r.
        ``temporal_init='static'`` starts the temporal taps at zero and scales the spatial
        ones by ``1 / (1 - r)`` in variance, keeping the output variance. (The convs'
        own fans would count only their ``(1 - r) * C`` or ``r * C`` inputs, or ``C / G``
        outputs per group.) Biases start at zero. ConvModule and the backbones call
        this instead of initialising a ``.weight`` STHConv does not have.
        """
        if mode not in ("fan_in", "fan_out"):
            raise ValueError(
                f"STHConv.init_weights: mode must be 'fan_in' or 'fan_out', got {mode!r}"
            )
        channels = self.in_channels if mode == "fan_in" else self.out_channels
        static = self.temporal_init == "static"
        if self.spatial is not None:
            share = 1 - self.temporal_ratio if static else 1.0
            _kaiming_normal_(self.spatial.weight, round(channels * self.kernel_size**2 * share))
        if self.temporal is not None:
            if static and self.spatial is not None:
                self.temporal.weight.zero_()
            else:  # temporal taps only: a 'static' start would be a dead block
                _kaiming_normal_(self.temporal.weight, channels * self.temporal_kernel)
        for conv in (self.spatial, self.temporal):
            if conv is not None and conv.bias is not None:
                conv.bias.zero_()

    @torch.no_grad()
    def load_2d_weight(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        """Initialise from the ``[C_out, C_in, k, k]`` weight of the 2D conv this replaces.

        Spatial taps copy the 2D weights of their (out, in) pairs. Temporal taps of a pair
        get the pair's 2D kernel sum on the centre tap and zeros elsewhere
        (``temporal_init='static'``: equal gain on static, smooth input), or keep their
        random values (``'random'``).
        """
        expected = (self.out_channels, self.in_channels, self.kernel_size, self.kernel_size)
        if tuple(weight.shape) != expected:
            raise ValueError(
                f"STHConv.load_2d_weight: expected a 2D weight of shape {expected}, "
                f"got {tuple(weight.shape)}"
            )
        if self.spatial is not None:
            for rows, cols, block in self._weight_blocks(
                self.spatial.weight, self.spatial_input_groups
            ):
                block.copy_(weight[rows, cols])
        if self.temporal is not None and self.temporal_init == "static":
            self.temporal.weight.zero_()
            centre = self.temporal_kernel // 2
            for rows, cols, block in self._weight_blocks(
                self.temporal.weight, self.temporal_input_groups
            ):
                block[:, :, centre, 0] = weight[rows, cols].sum(dim=(2, 3))
        if bias is not None:
            (self.spatial if self.spatial is not None else self.temporal).bias.copy_(bias)

    def dense_equivalent_weight(self) -> torch.Tensor:
        """The ``[C_out, C_in, k_t, k, k]`` Conv3d weight this block computes (for checks
        and export; the block itself never builds it)."""
        k, kt = self.kernel_size, self.temporal_kernel
        any_conv = self.spatial if self.spatial is not None else self.temporal
        ref = any_conv.weight.new_zeros(self.out_channels, self.in_channels, kt, k, k)
        if self.spatial is not None:
            for rows, cols, block in self._weight_blocks(
                self.spatial.weight, self.spatial_input_groups
            ):
                ref[rows, cols, kt // 2] = block
        if self.temporal is not None:
            for rows, cols, block in self._weight_blocks(
                self.temporal.weight, self.temporal_input_groups
            ):
                ref[rows, cols, :, k // 2, k // 2] = block[..., 0]
        return ref

    # --- forward -----------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x (torch.Tensor): ``[N * num_segments, C_in, H, W]``.

        Returns:
            torch.Tensor: ``[N * num_segments, C_out, H_out, W_out]``, in ``x``'s memory
            format.
        """
        nt, c, h, w = x.shape
        if c != self.in_channels:
            raise ValueError(f"STHConv: expected {self.in_channels} input channels, got {c}")
        _check_segments(nt, self.num_segments, "STHConv")
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not (
            x.is_contiguous()  # [.., 1, 1] tensors are both; treat them as the caller's NCHW
        )
        x = x.contiguous(memory_format=torch.channels_last)
        out = sth_fast_paths.forward(self, x)
        if out is None:
            out = self._spatial_plus_temporal(x)
        return out if channels_last else out.contiguous()

    def _spatial_plus_temporal(self, x: torch.Tensor) -> torch.Tensor:
        """The block as its two convs, for channels-last ``x``: the temporal taps over the
        whole batch, then the spatial taps clip chunk by clip chunk (see
        :meth:`_chunk_frames`), each added to its frames of the temporal output. The FLOP
        counters trace this path: its convs hold exactly the block's multiply-adds."""
        yt = self._temporal_taps(x) if self.temporal is not None else None
        if self.spatial is None:
            return yt
        step = self._chunk_frames(x)
        chunks = []
        for i in range(0, x.shape[0], step):
            ys = self.spatial(self._gather(x[i : i + step], self._spatial_index))
            chunks.append(ys if yt is None else ys.add_(yt[i : i + step]))
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks)

    def _chunk_frames(self, x: torch.Tensor) -> int:
        """Frames per chunk of the spatial taps: whole clips, as many as keep the gathered
        spatial input of a chunk under ``max_chunk_bytes`` (at least one clip)."""
        _, c, h, w = x.shape
        per_clip = self.num_segments * c * h * w * x.element_size()
        clips = self.max_chunk_bytes * c // (per_clip * self.spatial.in_channels)
        return max(1, int(clips)) * self.num_segments

    def _gather(self, x: torch.Tensor, index: torch.Tensor | slice | None) -> torch.Tensor:
        """Channels-last ``x``'s input groups given by ``index`` (see :meth:`_gather_index`),
        as one channels-last tensor."""
        if index is None:
            return x
        if isinstance(index, slice):
            return x[:, index]
        nt, _, h, w = x.shape
        # [N*T, C, H, W] (memory N*T, H, W, C) -> [N*T*H*W, G, C/G]: whole groups are
        # contiguous runs, copied by one index_select (faster than a cat of channel slices)
        groups = x.permute(0, 2, 3, 1).reshape(
            -1, self.num_groups, self.in_channels // self.num_groups
        )
        gathered = groups.index_select(1, index)
        return gathered.view(nt, h, w, -1).permute(0, 3, 1, 2)

    def _temporal_input(self, x: torch.Tensor) -> torch.Tensor:
        """What the temporal taps of channels-last ``x`` read, channels-last frames."""
        xt = self._gather(x, self._temporal_index)
        xt = centre_taps(xt, self.kernel_size, self.stride, self.padding, self.dilation)
        return xt.contiguous(memory_format=torch.channels_last)

    def _temporal_taps(self, x: torch.Tensor) -> torch.Tensor:
        """The temporal path's output for whole clips of channels-last ``x``, channels-last:
        the ``(k_t, 1)`` conv over the frames seen as rows."""
        xt = self._temporal_input(x)
        yt = self.temporal(frames_as_rows(xt, self.num_segments))
        return rows_as_frames(yt, *xt.shape[-2:])


@MODELS.register_module()
class STHDepthwiseConv(nn.Module):
    """Depthwise STH-Conv, for the 3x3 depthwise conv of MobileNetV2's inverted residuals.

    Each output channel reads only its own input channel, so there is nothing to
    interleave: the channels of the first ``temporal_groups`` of ``num_groups`` groups
    get a ``temporal_kernel x 1 x 1`` kernel, the others keep the ``k x k`` spatial one.
    Weights: ``C * (k*k*(1 - r) + k_t*r)``. Built like the depthwise ``Conv2d`` it
    replaces (``conv_cfg=dict(type='STHDepthwiseConv', ...)`` in MMCV's ``ConvModule``
    works); the output is stored in the input's memory format, as :class:`STHConv`'s.

    Args:
        in_channels (int): Input channels; divisible by ``num_groups``.
        out_channels (int, optional): Must equal ``in_channels`` (depthwise). Defaults
            to ``in_channels``.
        kernel_size, stride, padding, dilation, bias, num_segments, num_groups,
        temporal_groups, temporal_kernel, temporal_init: as in :class:`STHConv`.
        groups (int, optional): Must equal ``in_channels`` (depthwise). Defaults to
            ``in_channels``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        groups: int | None = None,
        bias: bool = False,
        num_segments: int = 8,
        num_groups: int = 4,
        temporal_groups: int = 1,
        temporal_kernel: int = 3,
        temporal_init: str = "static",
    ) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        groups = in_channels if groups is None else groups
        if not in_channels == out_channels == groups:
            raise ValueError(
                "STHDepthwiseConv replaces depthwise convs only (in_channels == "
                f"out_channels == groups), got {in_channels}, {out_channels}, groups={groups}"
            )
        kernel_size = _pair_to_int(kernel_size, "kernel_size")
        stride = _pair_to_int(stride, "stride")
        padding = _pair_to_int(padding, "padding")
        dilation = _pair_to_int(dilation, "dilation")
        _check_sth_arguments(
            "STHDepthwiseConv",
            dict(channels=in_channels),
            kernel_size,
            num_groups,
            temporal_groups,
            temporal_kernel,
            temporal_init,
        )
        self.in_channels = self.out_channels = self.channels = in_channels
        self.kernel_size, self.stride = kernel_size, stride
        self.padding, self.dilation = padding, dilation
        self.num_segments = num_segments
        self.num_groups, self.temporal_groups = num_groups, temporal_groups
        self.temporal_kernel, self.temporal_init = temporal_kernel, temporal_init
        # read by mmcv's ConvModule from the conv it wraps
        self.groups = in_channels
        self.transposed = False
        self.output_padding = (0, 0)
        self.temporal_channels = in_channels // num_groups * temporal_groups
        spatial_channels = in_channels - self.temporal_channels
        self.spatial = None
        if spatial_channels:
            self.spatial = nn.Conv2d(
                spatial_channels,
                spatial_channels,
                kernel_size,
                stride,
                padding,
                dilation,
                groups=spatial_channels,
                bias=bias,
            )
        self.temporal = None
        if self.temporal_channels:
            self.temporal = nn.Conv2d(
                self.temporal_channels,
                self.temporal_channels,
                (temporal_kernel, 1),
                padding=(temporal_kernel // 2, 0),
                groups=self.temporal_channels,
                bias=bias,
            )
        self.init_weights()

    def extra_repr(self) -> str:
        """The settings ``print(module)`` shows."""
        return (
            f"{self.channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"num_segments={self.num_segments}, temporal_channels={self.temporal_channels}"
        )

    @torch.no_grad()
    def init_weights(self, mode: str = "fan_in") -> None:
        """He-normal per channel (a depthwise tap's fan is its kernel size in either
        ``mode``): spatial std ``sqrt(2 / k^2)``, temporal ``sqrt(2 / k_t)``; with
        ``temporal_init='static'`` only the temporal centre tap is non-zero, with std
        ``sqrt(2)`` (a per-frame map: each channel is either temporal or spatial, so a
        zero start would leave it dead). Biases start at zero."""
        if mode not in ("fan_in", "fan_out"):
            raise ValueError("STHDepthwiseConv.init_weights: mode must be 'fan_in' or 'fan_out'")
        if self.spatial is not None:
            _kaiming_normal_(self.spatial.weight, self.kernel_size**2)
        if self.temporal is not None:
            if self.temporal_init == "static":
                self.temporal.weight.zero_()
                _kaiming_normal_(self.temporal.weight[:, :, self.temporal_kernel // 2], 1)
            else:
                _kaiming_normal_(self.temporal.weight, self.temporal_kernel)
        for conv in (self.spatial, self.temporal):
            if conv is not None and conv.bias is not None:
                conv.bias.zero_()

    @torch.no_grad()
    def load_2d_weight(self, weight: torch.Tensor, bias: torch.Tensor | None = None) -> None:
        """Initialise from the ``[C, 1, k, k]`` depthwise weight this replaces (see
        :meth:`STHConv.load_2d_weight`)."""
        expected = (self.channels, 1, self.kernel_size, self.kernel_size)
        if tuple(weight.shape) != expected:
            raise ValueError(
                f"STHDepthwiseConv.load_2d_weight: expected {expected}, got {tuple(weight.shape)}"
            )
        ct = self.temporal_channels
        if self.spatial is not None:
            self.spatial.weight.copy_(weight[ct:])
            if bias is not None:
                self.spatial.bias.copy_(bias[ct:])
        if self.temporal is not None:
            if self.temporal_init == "static":
                self.temporal.weight.zero_()
                centre = self.temporal_kernel // 2
                self.temporal.weight[:, 0, centre, 0] = weight[:ct].sum(dim=(1, 2, 3))
            if bias is not None:
                self.temporal.bias.copy_(bias[:ct])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N * num_segments, C, H, W]`` -> ``[N * num_segments, C, H_out, W_out]``, in
        ``x``'s memory format."""
        _check_segments(x.shape[0], self.num_segments, "STHDepthwiseConv")
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not (
            x.is_contiguous()
        )
        x = x.contiguous(memory_format=torch.channels_last)
        ct = self.temporal_channels
        parts = []
        if self.temporal is not None:
            xt = centre_taps(x[:, :ct], self.kernel_size, self.stride, self.padding, self.dilation)
            xt = xt.contiguous(memory_format=torch.channels_last)
            yt = self.temporal(frames_as_rows(xt, self.num_segments))
            parts.append(rows_as_frames(yt, *xt.shape[-2:]))
        if self.spatial is not None:
            parts.append(self.spatial(x[:, ct:]))
        out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
        return out if channels_last else out.contiguous()
