from .sth_conv import STHConv

__all__ = ["STHConv"]
