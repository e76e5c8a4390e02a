from .backbones import MobileNetV2STH, ResNetSTH, load_2d_state_dict
from .inference import PackedConv2d, fold_batch_norms, prepack_convs, set_sth_trace_path
from .sth_conv import STHConv, STHDepthwiseConv
from .temporal_shift import LayoutPreservingTemporalShift, keep_layout_in_temporal_shifts

__all__ = [
    "LayoutPreservingTemporalShift",
    "MobileNetV2STH",
    "PackedConv2d",
    "ResNetSTH",
    "STHConv",
    "STHDepthwiseConv",
    "fold_batch_norms",
    "keep_layout_in_temporal_shifts",
    "load_2d_state_dict",
    "prepack_convs",
    "set_sth_trace_path",
]
