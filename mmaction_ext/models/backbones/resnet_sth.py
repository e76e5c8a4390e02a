# Copyright (c) plugzoo contributors. Apache-2.0.
from __future__ import annotations

import torch
from mmaction.models.backbones.resnet import ResNet
from mmaction.registry import MODELS

from ..sth_conv import STHConv
from .convert_2d import load_2d_state_dict, read_2d_checkpoint


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


def _channels_first(out):
    """The backbone's output(s) as contiguous NCHW tensors, as MMAction2's ResNet returns."""
    if isinstance(out, tuple):
        return tuple(o.contiguous() for o in out)
    return out.contiguous()


@MODELS.register_module()
class ResNetSTH(ResNet):
    """ResNet whose 3x3 block convs are STH-Conv (BasicBlock: conv1 and conv2;
    Bottleneck: conv2).

    Built as MMAction2's ResNet, then each 3x3 block conv is replaced, as ResNetTSM
    inserts its shifts after building. Inside, the network runs in channels-last memory
    format (STH's temporal taps need no copy there, and oneDNN's convs are faster on it);
    its output is contiguous NCHW, as the host backbones'. ``pretrained`` is a 2D ResNet
    checkpoint (local path) in torchvision's format (``torchvision_pretrain=True``, the
    host's default) or MMAction2's (``False``; keys with or without ``backbone.``); either
    is converted into the STH weights (:func:`load_2d_state_dict`): spatial taps copy the
    2D kernels, temporal taps start as the 2D kernel's sum (``temporal_init='static'``).
    An STH conv the checkpoint cannot fill and a shape mismatch are errors naming them;
    every other key not placed is logged. Random init: the host's, except the STH convs,
    which are initialised from the block's full fan (:meth:`STHConv.init_weights`, mode
    ``'fan_out'`` as the host's Kaiming init).

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
        """The STH conv replacing the 2D ``conv`` of layer ``name``, with its settings."""
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

    def init_weights(self) -> None:
        """Random init, then the 2D checkpoint if ``pretrained`` names one.

        MMAction2's ResNet would load a 2D checkpoint with loaders that skip every tensor
        whose shape differs (all STH convs) or initialise randomly, not both.
        """
        pretrained, self.pretrained = self.pretrained, None
        try:
            super().init_weights()
        finally:
            self.pretrained = pretrained
        for module in self.modules():
            if isinstance(module, STHConv):
                module.init_weights(mode="fan_out")
        if pretrained:
            self._load_2d_checkpoint(pretrained)

    def _load_2d_checkpoint(self, path: str) -> None:
        """Convert the 2D checkpoint at ``path`` into this network; an error says which
        ``torchvision_pretrain`` setting a checkpoint of the other format needs."""
        state = read_2d_checkpoint(path)
        fmt = "torchvision" if self.torchvision_pretrain else "MMAction2"
        name_map = torchvision_resnet_name if self.torchvision_pretrain else (lambda name: name)
        try:
            load_2d_state_dict(self, state, name_map, checkpoint=path)
        except ValueError as error:
            # the other format's key names: say which flag reads them
            other = "MMAction2" if self.torchvision_pretrain else "torchvision"
            looks_other = ("conv1.conv.weight" in state) != (fmt == "MMAction2")
            hint = (
                f" The checkpoint looks {other}-format: set torchvision_pretrain="
                f"{not self.torchvision_pretrain}."
                if looks_other
                else ""
            )
            raise ValueError(
                f"{error} (read as a {fmt}-format ResNet-{self.depth}).{hint}"
            ) from None

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """``[N * num_segments, 3, H, W]`` -> features of the ``out_indices`` stages,
        contiguous NCHW (channels-last inside)."""
        return _channels_first(super().forward(x.contiguous(memory_format=torch.channels_last)))
