"""A learning-rate schedule that scales each parameter group instead of overwriting it.

LAVIS's schedulers (``lavis/common/optims.py``) set the same learning rate on every
parameter group, which erases per-group rates such as CLIP4Clip's 1e-7 for CLIP weights
beside 1e-4 for new layers. This one computes the schedule's rate ``lr(t)`` and sets each
group's rate to ``lr(t) * group["lr_scale"]`` (``lr_scale`` defaults to 1).
"""

from __future__ import annotations

import math

from lavis.common.registry import registry


@registry.register_lr_scheduler("linear_warmup_cosine_group_lr")
class GroupScaledWarmupCosineLR:
    """Linear warm-up from ``warmup_start_lr`` to ``init_lr`` over ``warmup_steps``
    iterations, then a cosine decay to ``min_lr`` at the end of ``max_epoch`` epochs.

    The decay is per iteration when the runner passes ``iters_per_epoch``. LAVIS's
    ``RunnerBase`` does not: under it the cosine takes one value per epoch and the warm-up
    runs inside the first epoch only, cut at its end (as LAVIS's
    ``linear_warmup_cosine_lr``). A negative ``warmup_start_lr`` (``RunnerBase``'s
    default when ``run.warmup_lr`` is unset) starts at ``init_lr``: no warm-up. Takes
    LAVIS's scheduler arguments, so ``run.lr_sched: linear_warmup_cosine_group_lr`` works
    with any runner.
    """

    def __init__(
        self,
        optimizer,
        max_epoch,
        min_lr,
        init_lr,
        warmup_steps=0,
        warmup_start_lr=-1,
        iters_per_epoch=None,
        **kwargs,
    ):
        self.optimizer = optimizer
        self.max_epoch = int(max_epoch)
        self.min_lr, self.init_lr = float(min_lr), float(init_lr)
        self.warmup_steps = int(warmup_steps or 0)
        self.warmup_start_lr = float(warmup_start_lr) if warmup_start_lr >= 0 else self.init_lr
        self.iters_per_epoch = int(iters_per_epoch) if iters_per_epoch else None
        proportion = kwargs.get("warmup_proportion")  # a share of all steps instead
        if proportion is not None and self.iters_per_epoch:
            self.warmup_steps = round(float(proportion) * self.max_epoch * self.iters_per_epoch)

    def lr_at(self, cur_epoch: int, cur_step: int) -> float:
        """The base rate (before each group's ``lr_scale``) at this point of training."""
        if self.iters_per_epoch:
            step = cur_epoch * self.iters_per_epoch + cur_step
            total = max(self.max_epoch * self.iters_per_epoch, 1)
            progress = (step - self.warmup_steps) / max(total - self.warmup_steps, 1)
        else:  # LAVIS's shape: warm-up inside the first epoch, then one value per epoch
            step = cur_step if cur_epoch == 0 else self.warmup_steps
            progress = cur_epoch / max(self.max_epoch, 1)
        if step < self.warmup_steps:
            fraction = step / self.warmup_steps
            return self.warmup_start_lr + (self.init_lr - self.warmup_start_lr) * fraction
        cosine = 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
        return self.min_lr + (self.init_lr - self.min_lr) * cosine

    def step(self, cur_epoch, cur_step):
        lr = self.lr_at(cur_epoch, cur_step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
        return lr
