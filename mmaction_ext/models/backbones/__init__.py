from .convert_2d import load_2d_state_dict
from .mobilenet_v2_sth import MobileNetV2STH
from .resnet_sth import ResNetSTH

__all__ = ["MobileNetV2STH", "ResNetSTH", "load_2d_state_dict"]
