from .backbones import MobileNetV2STH, ResNetSTH, load_2d_state_dict
from .sth_conv import STHConv, STHDepthwiseConv

__all__ = ["MobileNetV2STH", "ResNetSTH", "STHConv", "STHDepthwiseConv", "load_2d_state_dict"]
