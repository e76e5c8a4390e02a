"""Runner, optimiser and learning-rate schedules registered in LAVIS's registry."""

from retrieval_ext.runners.lr_schedule import GroupScaledWarmupCosineLR
from retrieval_ext.runners.optim import BertAdam, GroupScaledProgressWarmupCosineLR
from retrieval_ext.runners.runner import PortableRunner, init_distributed

__all__ = [
    "BertAdam",
    "GroupScaledProgressWarmupCosineLR",
    "GroupScaledWarmupCosineLR",
    "PortableRunner",
    "init_distributed",
]
