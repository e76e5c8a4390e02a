from .backbones import MobileNetV2STH, ResNetSTH, load_2d_state_dict
from .sth_conv import STHConv, STHDepthwiseConv
from .temporal_shift import LayoutPreservingTemporalShift, keep_layout_in_temporal_shifts

__all__ = [
    "LayoutPreservingTemporalShift",
    "MobileNetV2STH",
    "ResNetSTH",
    "STHConv",
    "STHDepthwiseConv",
    "keep_layout_in_temporal_shifts",
    "load_2d_state_dict",
]
