"""Runner and learning-rate schedule registered in LAVIS's registry."""

from retrieval_ext.runners.lr_schedule import GroupScaledWarmupCosineLR
from retrieval_ext.runners.runner import PortableRunner, init_distributed

__all__ = ["GroupScaledWarmupCosineLR", "PortableRunner", "init_distributed"]
