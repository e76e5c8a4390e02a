# Copyright (c) plugzoo contributors. Apache-2.0.
from __future__ import annotations

from mmaction.models.backbones.resnet import ResNet
from mmaction.registry import MODELS
from mmengine.logging import MMLogger

from ..sth_conv import STHConv
from .inflate import load_2d_state_dict, read_2d_checkpoint


def torchvision_resnet_name(name: str) -> str:
    """MMAction2 ResNet module name -> torchvision's (``layer1.0.conv1.bn`` -> ``layer1.0.bn1``)."""
    if name.endswith(".conv") or name.endswith(".bn"):
        wrapper, _, leaf = name.rpartition(".")
        if wrapper.endswith("downsample"):
            return f"{wrapper}.{0 if leaf == 'conv' else 1}"
        if leaf == "bn":
            head, _, conv = wrapper.rpartition(".")
            bn = conv.replace("conv", "bn")
            return f"{head}.{bn}" if head else bn
        return wrapper
    return name


@MODELS.register_module()
class ResNetSTH(ResNet):
    """ResNet whose 3x3 block convs are STH-Conv (BasicBlock: conv1 and conv2;
    Bottleneck: conv2).

    Built as MMAction2's ResNet, then each ``conv2`` is replaced, as ResNetTSM inserts its
    shifts after building. A torchvision-format 2D checkpoint given as a local path
    (``pretrained='/path/resnet50.pth'``) is mapped into the STH weights
    (:func:`load_2d_state_dict`): spatial taps copy the 2D kernels, temporal taps start as
    the 2D kernel's sum (``temporal_init='static'``); every key that could not be placed is
    logged and shape mismatches are errors.

    Args:
        depth (int): 18, 34, 50 or 101 (152 too, as MMAction2's ResNet).
        num_segments (int): Frames per clip. Defaults to 8.
        num_groups (int): STH channel groups G. Defaults to 4.
        temporal_groups (int): Temporal groups tG (r = tG / G). Defaults to 1.
        interleave (bool): Rotate the temporal groups across filter groups. Defaults to
            True.
        temporal_kernel (int): Temporal taps. Defaults to 3.
        temporal_init (str): ``'static'`` or ``'random'``. Defaults to ``'static'``.
        **kwargs: MMAction2 ResNet arguments (``pretrained``, ``torchvision_pretrain``,
            ``norm_eval``, ``frozen_stages``...).
    """

    def __init__(
        self,
        depth: int,
        num_segments: int = 8,
        num_groups: int = 4,
        temporal_groups: int = 1,
        interleave: bool = True,
        temporal_kernel: int = 3,
        temporal_init: str = "static",
        **kwargs,
    ) -> None:
        super().__init__(depth, **kwargs)
        self.num_segments = num_segments
        self.sth_cfg = dict(
            num_segments=num_segments,
            num_groups=num_groups,
            temporal_groups=temporal_groups,
            interleave=interleave,
            temporal_kernel=temporal_kernel,
            temporal_init=temporal_init,
        )
        self.make_sth()

    def _sth_from(self, name: str, conv) -> STHConv:
        try:
            return STHConv(
                conv.in_channels,
                conv.out_channels,
                conv.kernel_size[0],
                conv.stride[0],
                conv.padding[0],
                conv.dilation[0],
                bias=conv.bias is not None,
                **self.sth_cfg,
            )
        except ValueError as error:
            raise ValueError(f"ResNetSTH layer {name}: {error}") from None

    def make_sth(self) -> None:
        """Replace every 3x3 conv of every block: ``conv2`` of a Bottleneck, ``conv1`` and
        ``conv2`` of a BasicBlock (ResNet-18/34).

        The 7x7 stem stays 2D: STH splits input and output channels into the same number
        of groups, and no G > 1 divides both its 3 inputs and 64 outputs.
        """
        for layer_name in self.res_layers:
            for index, block in enumerate(getattr(self, layer_name)):
                for conv_name in ("conv1", "conv2", "conv3"):
                    wrapper = getattr(block, conv_name, None)
                    if wrapper is not None and wrapper.conv.kernel_size[0] == 3:
                        name = f"{layer_name}.{index}.{conv_name}.conv"
                        wrapper.conv = self._sth_from(name, wrapper.conv)

    def _load_torchvision_checkpoint(self, logger: MMLogger = None) -> None:
        """Map a torchvision 2D ResNet checkpoint (local file) into the STH network."""
        state = read_2d_checkpoint(self.pretrained)
        report = load_2d_state_dict(
            self, state, torchvision_resnet_name, checkpoint=self.pretrained, logger=logger
        )
        if not report["placed"]:
            raise ValueError(
                f"{self.pretrained}: no key matched a torchvision ResNet-{self.depth} "
                f"(first keys: {sorted(state)[:5]})"
            )
