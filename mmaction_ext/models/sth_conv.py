# Copyright (c) plugzoo contributors. Apache-2.0.
"""STH-Conv: spatial and temporal taps interleaved inside one convolution (arXiv 2003.08042).

The paper body is not public; this is the reconstruction of ``shared/specs/sth.md``. Input
and output channels are split into ``num_groups`` (G) groups. Output group ``g`` sees
``temporal_groups`` (tG) of the input groups through a ``temporal_kernel x 1 x 1`` kernel
and the other input groups through the ``k x k`` spatial kernel of the conv it replaces;
with ``interleave=True`` the temporal input groups of output group ``g`` are
``(g + j) mod G, j < tG``, so every input channel is seen temporally by some filters and
spatially by the others. Weights: ``C_out * C_in * (k*k*(1 - r) + k_t*r)``, ``r = tG / G``.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmaction.registry import MODELS


def _output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


def _centre_taps(x, kernel: int, stride: int, padding: int, dilation: int):
    """The input pixels at the centres of the ``kernel x kernel`` windows the replaced
    spatial conv would use: what the 1x1 temporal taps read. Subsampling here, before
    the temporal conv, moves ``stride**2`` times fewer pixels than a strided Conv3d."""
    h, w = x.shape[-2:]
    offset = dilation * (kernel // 2) - padding
    h_out = _output_size(h, kernel, stride, padding, dilation)
    w_out = _output_size(w, kernel, stride, padding, dilation)
    if not (offset == 0 and -(-h // stride) == h_out and -(-w // stride) == w_out):
        lead = -offset  # F.pad with negative amounts crops
        trail_h = (h_out - 1) * stride + 1 - (h + lead)
        trail_w = (w_out - 1) * stride + 1 - (w + lead)
        x = F.pad(x, (lead, trail_w, lead, trail_h))
    return x[..., ::stride, ::stride] if stride > 1 else x


def _temporal_taps(conv3d: nn.Conv3d, x, num_segments: int):
    """Apply ``(k_t, 1, 1)`` taps to frames laid out as ``[N * T, C, H, W]``."""
    nt = x.shape[0]
    # [N*T, C, H, W] -> [N, C, T, H, W], stored channels-last: oneDNN runs this (k_t, 1, 1)
    # Conv3d about 10x faster than on the NCDHW layout for early, high-resolution stages
    x = x.view(nt // num_segments, num_segments, *x.shape[1:]).transpose(1, 2)
    x = x.contiguous(memory_format=torch.channels_last_3d)
    y = conv3d(x)
    # [N, C_out, T, H', W'] -> [N*T, C_out, H', W']
    return y.transpose(1, 2).reshape(nt, y.shape[1], *y.shape[-2:])


def _check_segments(nt: int, num_segments: int, layer: str) -> None:
    if nt % num_segments:
        raise ValueError(
            f"{layer}: the batch holds {nt} frames, not a multiple of "
            f"num_segments={num_segments}; frames of different clips would mix in the "
            "temporal taps. Set num_segments to the clip length the pipeline samples."
        )


@torch.no_grad()
def _reset_temporal_taps(conv3d: nn.Conv3d, temporal_init: str) -> None:
    """PyTorch's default init; ``'static'`` then keeps only the centre temporal tap."""
    conv3d.reset_parameters()
    if temporal_init == "static":
        centre = conv3d.kernel_size[0] // 2
        keep = conv3d.weight[:, :, centre].clone()
        conv3d.weight.zero_()
        conv3d.weight[:, :, centre] = keep


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
    if temporal_kernel < 1 or temporal_kernel % 2 == 0:
        raise ValueError(f"{layer}: temporal_kernel must be odd, got {temporal_kernel}")
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

    Input and output use MMAction2's ``[N * num_segments, C, H, W]`` layout. The spatial
    taps are ``nn.Conv2d`` modules and the temporal taps one ``nn.Conv3d`` (grouped when
    interleaved), holding exactly the counted weights: no masked dense kernel exists.

    Args:
        in_channels (int): Input channels; divisible by ``num_groups``.
        out_channels (int): Output channels; divisible by ``num_groups``.
        kernel_size (int): Spatial kernel ``k`` of the replaced conv (odd, > 1).
        stride (int): Spatial stride, shared by the temporal taps. Defaults to 1.
        padding (int): Spatial padding of the replaced conv. Defaults to 1.
        dilation (int): Spatial dilation of the replaced conv. Defaults to 1.
        bias (bool): Add a bias per output channel. Defaults to False.
        num_segments (int): Frames per clip (T). Defaults to 8.
        num_groups (int): Channel groups G. Defaults to 4.
        temporal_groups (int): Input groups each output group sees temporally (tG,
            ``0 <= tG <= G``); ``0`` makes the block the 2D conv. Defaults to 1.
        interleave (bool): Rotate the temporal input groups from output group to output
            group; ``False`` uses input groups ``0..tG-1`` for every output group (the
            fixed-split ablation). Defaults to True.
        temporal_kernel (int): Temporal taps k_t (odd), zero-padded at clip borders.
            Defaults to 3.
        temporal_init (str): ``'static'`` starts the temporal taps as a per-frame map
            (only the centre tap non-zero; :meth:`load_2d_weight` puts the replaced 2D
            kernel's sum there); ``'random'`` initialises every tap randomly (assumption:
            the paper's initialisation is not public). Defaults to ``'static'``.
        groups (int): Accepted because MMCV's ``ConvModule`` passes it; only 1 (a dense
            conv) can be replaced.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        bias: bool = False,
        num_segments: int = 8,
        num_groups: int = 4,
        temporal_groups: int = 1,
        interleave: bool = True,
        temporal_kernel: int = 3,
        temporal_init: str = "static",
        groups: int = 1,
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

        self.in_channels = in_channels
        self.out_channels = out_channels
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
        # read by mmcv's ConvModule from the conv it wraps
        self.groups = 1
        self.transposed = False
        self.output_padding = (0, 0)

        G, tG = num_groups, temporal_groups
        in_group, out_group = in_channels // G, out_channels // G
        spatial_groups = G - tG
        # One spatial conv per output group only when the spatial input set rotates.
        self._per_group_spatial = interleave and 0 < tG < G
        self.spatial = nn.ModuleList()
        if spatial_groups:
            n_convs, conv_out = (G, out_group) if self._per_group_spatial else (1, out_channels)
            for _ in range(n_convs):
                self.spatial.append(
                    nn.Conv2d(
                        spatial_groups * in_group,
                        conv_out,
                        kernel_size,
                        stride,
                        padding,
                        dilation,
                        bias=bias,
                    )
                )
        self.temporal = None
        if tG:
            interleaved = interleave and tG < G
            self.temporal = nn.Conv3d(
                tG * in_group * (G if interleaved else 1),
                out_channels,
                (temporal_kernel, 1, 1),
                padding=(temporal_kernel // 2, 0, 0),
                groups=G if interleaved else 1,
                bias=bias and not spatial_groups,
            )
            # input channels of the temporal conv, in order: the groups each output
            # group reads temporally (identity for tG=1, where group g reads group g)
            order = [
                i for g in range(G if interleaved else 1) for i in self.temporal_input_groups(g)
            ]
            index = torch.cat([torch.arange(i * in_group, (i + 1) * in_group) for i in order])
            identity = torch.equal(index, torch.arange(in_channels))
            self.register_buffer("_temporal_index", None if identity else index, persistent=False)
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

    @property
    def temporal_ratio(self) -> float:
        """r = temporal_groups / num_groups."""
        return self.temporal_groups / self.num_groups

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
            f"num_segments={self.num_segments}, num_groups={self.num_groups}, "
            f"temporal_groups={self.temporal_groups}, interleave={self.interleave}, "
            f"temporal_kernel={self.temporal_kernel}"
        )

    # --- initialisation ----------------------------------------------------------------

    def init_weights(self) -> None:
        """Kaiming-uniform taps (PyTorch's conv default); with ``temporal_init='static'``
        only the centre temporal tap is non-zero. ConvModule calls this instead of
        initialising a ``.weight`` STHConv does not have."""
        for conv in self.spatial:
            conv.reset_parameters()
        if self.temporal is not None:
            _reset_temporal_taps(self.temporal, self.temporal_init)

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
        G = self.num_groups
        in_group, out_group = self.in_channels // G, self.out_channels // G

        def channels(groups, size):
            return torch.cat([torch.arange(i * size, (i + 1) * size) for i in groups])

        if self.spatial:
            if self._per_group_spatial:
                for g, conv in enumerate(self.spatial):
                    rows = weight[g * out_group : (g + 1) * out_group]
                    conv.weight.copy_(rows[:, channels(self.spatial_input_groups(g), in_group)])
            else:
                cols = channels(self.spatial_input_groups(0), in_group)
                self.spatial[0].weight.copy_(weight[:, cols])
        if self.temporal is not None and self.temporal_init == "static":
            summed = weight.sum(dim=(2, 3))  # [C_out, C_in]
            self.temporal.weight.zero_()
            centre = self.temporal_kernel // 2
            per_out = G if self.temporal.groups > 1 else 1
            rows_per = self.out_channels // per_out
            for g in range(per_out):
                cols = channels(self.temporal_input_groups(g), in_group)
                block = summed[g * rows_per : (g + 1) * rows_per][:, cols]
                self.temporal.weight[g * rows_per : (g + 1) * rows_per, :, centre, 0, 0] = block
        if bias is not None:
            if self.spatial:
                if self._per_group_spatial:
                    for g, conv in enumerate(self.spatial):
                        conv.bias.copy_(bias[g * out_group : (g + 1) * out_group])
                else:
                    self.spatial[0].bias.copy_(bias)
            else:
                self.temporal.bias.copy_(bias)

    def dense_equivalent_weight(self) -> torch.Tensor:
        """The ``[C_out, C_in, k_t, k, k]`` Conv3d weight this block computes (for checks
        and export; the block itself never builds it)."""
        G, k, kt = self.num_groups, self.kernel_size, self.temporal_kernel
        in_group, out_group = self.in_channels // G, self.out_channels // G
        ref = self._any_weight().new_zeros(self.out_channels, self.in_channels, kt, k, k)
        for g in range(G):
            rows = slice(g * out_group, (g + 1) * out_group)
            if self.spatial:
                if self._per_group_spatial:
                    w = self.spatial[g].weight
                else:
                    w = self.spatial[0].weight[rows]
                for m, i in enumerate(self.spatial_input_groups(g)):
                    ref[rows, i * in_group : (i + 1) * in_group, kt // 2] = w[
                        :, m * in_group : (m + 1) * in_group
                    ]
            if self.temporal is not None:
                w = self.temporal.weight[rows]
                for m, i in enumerate(self.temporal_input_groups(g)):
                    ref[rows, i * in_group : (i + 1) * in_group, :, k // 2, k // 2] = w[
                        :, m * in_group : (m + 1) * in_group, :, 0, 0
                    ]
        return ref

    def _any_weight(self) -> torch.Tensor:
        return self.spatial[0].weight if self.spatial else self.temporal.weight

    # --- forward -----------------------------------------------------------------------

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block.

        Args:
            x (torch.Tensor): ``[N * num_segments, C_in, H, W]``.

        Returns:
            torch.Tensor: ``[N * num_segments, C_out, H_out, W_out]``, stored channels-last
            when the spatial taps rotate (the layers after it run faster on it too).
        """
        nt, c = x.shape[:2]
        if c != self.in_channels:
            raise ValueError(f"STHConv: expected {self.in_channels} input channels, got {c}")
        _check_segments(nt, self.num_segments, "STHConv")
        G, tG = self.num_groups, self.temporal_groups
        in_group = c // G
        out = None
        if self.spatial:
            if self._per_group_spatial:
                # x's channels from group tG on, then groups 0..G-2 again: each output
                # group's rotating spatial input groups are one contiguous slice of it
                # channels-last: oneDNN's convs on channel slices of an NCHW tensor are
                # several times slower (e.g. 64 channels at 56x56)
                xc = x.contiguous(memory_format=torch.channels_last)
                rotated = torch.cat([xc[:, tG * in_group :], xc[:, : (G - 1) * in_group]], dim=1)
                width = (G - tG) * in_group
                out = torch.cat(
                    [
                        conv(rotated[:, g * in_group : g * in_group + width])
                        for g, conv in enumerate(self.spatial)
                    ],
                    dim=1,
                )
            else:  # spatial input groups tG..G-1 for every output group
                out = self.spatial[0](x[:, tG * in_group :] if tG else x)
        if self.temporal is not None:
            index = self._temporal_index
            xt = x if index is None else x.index_select(1, index)
            xt = _centre_taps(xt, self.kernel_size, self.stride, self.padding, self.dilation)
            yt = _temporal_taps(self.temporal, xt, self.num_segments)
            out = yt if out is None else out.add_(yt)
        return out


@MODELS.register_module()
class STHDepthwiseConv(nn.Module):
    """Depthwise STH-Conv, for the 3x3 depthwise conv of MobileNetV2's inverted residuals.

    Each output channel reads only its own input channel, so there is nothing to
    interleave: the channels of the first ``temporal_groups`` of ``num_groups`` groups
    get a ``temporal_kernel x 1 x 1`` kernel, the others keep the ``k x k`` spatial one.
    Weights: ``C * (k*k*(1 - r) + k_t*r)``.

    Args:
        channels (int): Input = output channels; divisible by ``num_groups``.
        kernel_size, stride, padding, dilation, bias, num_segments, num_groups,
        temporal_groups, temporal_kernel, temporal_init: as in :class:`STHConv`.
    """

    def __init__(
        self,
        channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        dilation: int = 1,
        bias: bool = False,
        num_segments: int = 8,
        num_groups: int = 4,
        temporal_groups: int = 1,
        temporal_kernel: int = 3,
        temporal_init: str = "static",
    ) -> None:
        super().__init__()
        _check_sth_arguments(
            "STHDepthwiseConv",
            dict(channels=channels),
            kernel_size,
            num_groups,
            temporal_groups,
            temporal_kernel,
            temporal_init,
        )
        self.channels = channels
        self.kernel_size, self.stride = kernel_size, stride
        self.padding, self.dilation = padding, dilation
        self.num_segments = num_segments
        self.num_groups, self.temporal_groups = num_groups, temporal_groups
        self.temporal_kernel, self.temporal_init = temporal_kernel, temporal_init
        self.temporal_channels = channels // num_groups * temporal_groups
        spatial_channels = channels - self.temporal_channels
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
            self.temporal = nn.Conv3d(
                self.temporal_channels,
                self.temporal_channels,
                (temporal_kernel, 1, 1),
                padding=(temporal_kernel // 2, 0, 0),
                groups=self.temporal_channels,
                bias=bias,
            )
        self.init_weights()

    def extra_repr(self) -> str:
        return (
            f"{self.channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"num_segments={self.num_segments}, temporal_channels={self.temporal_channels}"
        )

    def init_weights(self) -> None:
        """As :meth:`STHConv.init_weights`."""
        if self.spatial is not None:
            self.spatial.reset_parameters()
        if self.temporal is not None:
            _reset_temporal_taps(self.temporal, self.temporal_init)

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
                self.temporal.weight[:, 0, centre, 0, 0] = weight[:ct].sum(dim=(1, 2, 3))
            if bias is not None:
                self.temporal.bias.copy_(bias[:ct])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``[N * num_segments, C, H, W]`` -> ``[N * num_segments, C, H_out, W_out]``."""
        _check_segments(x.shape[0], self.num_segments, "STHDepthwiseConv")
        ct = self.temporal_channels
        parts = []
        if self.temporal is not None:
            xt = _centre_taps(x[:, :ct], self.kernel_size, self.stride, self.padding, self.dilation)
            parts.append(_temporal_taps(self.temporal, xt, self.num_segments))
        if self.spatial is not None:
            parts.append(self.spatial(x[:, ct:]))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)
