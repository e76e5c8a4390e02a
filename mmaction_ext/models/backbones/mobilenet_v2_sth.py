# Copyright (c) plugzoo contributors. Apache-2.0.
from __future__ import annotations

import torch
from mmaction.models.backbones.mobilenet_v2 import InvertedResidual, MobileNetV2
from mmaction.registry import MODELS

from ..sth_conv import STHDepthwiseConv
from .convert_2d import load_2d_state_dict, read_2d_checkpoint
from .resnet_sth import _channels_first


@MODELS.register_module()
class MobileNetV2STH(MobileNetV2):
    """MobileNetV2 whose 3x3 depthwise convs are depthwise STH-Conv.

    In every inverted residual, the channels of ``temporal_groups`` of ``num_groups``
    groups get a ``temporal_kernel x 1 x 1`` kernel instead of the 3x3 spatial one.
    ``pretrained`` is a local MMAction2/MMPretrain-format 2D MobileNetV2 checkpoint (keys
    with or without ``backbone.``), mapped into the STH weights with every unplaced key
    logged, and shape mismatches and depthwise STH convs left unfilled raised
    (MMAction2's loader skips them silently). Runs channels-last inside; the output is
    contiguous NCHW, as the host backbones'.

    Args:
        num_segments (int): Frames per clip. Defaults to 8.
        num_groups (int): Channel groups. Defaults to 4.
        temporal_groups (int): Temporal groups (r = temporal_groups / num_groups).
            Defaults to 1.
        temporal_kernel (int): Temporal taps. Defaults to 3.
        temporal_init (str): ``'static'`` or ``'random'``. Defaults to ``'static'``.
        pretrained (str, optional): Local 2D checkpoint. Defaults to None.
        **kwargs: MMAction2 MobileNetV2 arguments (``widen_factor``, ``out_indices``...).
    """

    def __init__(
        self,
        num_segments: int = 8,
        num_groups: int = 4,
        temporal_groups: int = 1,
        temporal_kernel: int = 3,
        temporal_init: str = "static",
        pretrained: str | None = None,
        **kwargs,
    ) -> None:
        # random init here; the 2D checkpoint is mapped in init_weights
        super().__init__(pretrained=None, **kwargs)
        self.pretrained = pretrained
        self.num_segments = num_segments
        self.sth_cfg = dict(
            num_segments=num_segments,
            num_groups=num_groups,
            temporal_groups=temporal_groups,
            temporal_kernel=temporal_kernel,
            temporal_init=temporal_init,
        )
        self.make_sth()

    def make_sth(self) -> None:
        """Replace the depthwise conv of every inverted residual."""
        for name, module in self.named_modules():
            if not isinstance(module, InvertedResidual):
                continue
            for index, layer in enumerate(module.conv):
                conv = getattr(layer, "conv", None)
                depthwise = conv is not None and conv.groups == conv.in_channels > 1
                if not (depthwise and conv.kernel_size[0] > 1):
                    continue
                try:
                    layer.conv = STHDepthwiseConv(
                        conv.in_channels,
                        conv.out_channels,
                        conv.kernel_size[0],
                        conv.stride[0],
                        conv.padding[0],
                        conv.dilation[0],
                        conv.groups,
                        bias=conv.bias is not None,
                        **self.sth_cfg,
                    )
                except ValueError as error:
                    raise ValueError(f"MobileNetV2STH layer {name}.conv.{index}: {error}") from None

    def init_weights(self) -> None:
        """The host's random init, STH convs' own (:meth:`STHDepthwiseConv.init_weights`),
        then the 2D checkpoint if ``pretrained`` names one."""
        super().init_weights()
        for module in self.modules():
            if isinstance(module, STHDepthwiseConv):
                module.init_weights()
        if self.pretrained:
            state = read_2d_checkpoint(self.pretrained)
            report = load_2d_state_dict(self, state, checkpoint=self.pretrained)
            if not report["placed"]:
                raise ValueError(
                    f"{self.pretrained}: no key matched a MobileNetV2 "
                    f"(first keys: {sorted(state)[:5]})"
                )

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """``[N * num_segments, 3, H, W]`` -> features, contiguous NCHW (channels-last
        inside)."""
        return _channels_first(super().forward(x.contiguous(memory_format=torch.channels_last)))
