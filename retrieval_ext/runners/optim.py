"""CLIP4Clip's optimiser recipe: BertAdam, gradient clipping, warm-up then cosine.

CLIP4Clip (``modules/optimization.py``) trains with BertAdam: Adam without bias correction,
``eps`` added outside the square root, weight decay added to the update (decoupled, as
AdamW), betas (0.9, 0.98), eps 1e-6. Its training loop (``main_task_retrieval.py``) clips
the global gradient norm to 1.0 before each step (as X-CLIP and TeachCLIP do), which makes
BertAdam's own per-parameter clip to 1.0 a no-op; ``per_parameter`` reproduces that inner
clip alone. Its ``warmup_cosine`` schedule is linear warm-up over the first
``warmup_proportion`` of all steps, then ``0.5 * (1 + cos(pi * progress))`` of the *global*
progress (so the rate drops from 1.0 to about 0.976 when a 10% warm-up ends). Each piece is
a ``run`` key of :class:`retrieval_ext.runners.runner.PortableRunner`.
"""

from __future__ import annotations

import math

from retrieval_ext.runners.lr_schedule import GroupScaledWarmupCosineLR

import torch
from lavis.common.registry import registry
from torch.optim import Optimizer

OPTIMIZERS = ("adamw", "bert_adam")
GRAD_CLIP_MODES = ("global", "per_parameter")


class BertAdam(Optimizer):
    """Adam as CLIP4Clip's BertAdam computes it (learning-rate schedule and clipping are
    separate here: the group rate is whatever the scheduler set).

    ``m = b1 m + (1 - b1) g``; ``v = b2 v + (1 - b2) g^2``;
    ``p -= lr * (m / (sqrt(v) + eps) + weight_decay * p)``, with no bias correction.
    """

    def __init__(self, params, lr=1e-4, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.0):
        if lr < 0.0:
            raise ValueError(f"BertAdam: invalid learning rate {lr}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"BertAdam: betas must be in [0, 1), got {betas}")
        if eps < 0.0:
            raise ValueError(f"BertAdam: invalid eps {eps}")
        super().__init__(
            params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)
        )

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.grad.is_sparse:
                    raise RuntimeError("BertAdam does not support sparse gradients")
                state = self.state[param]
                if not state:
                    state["step"] = 0
                    state["next_m"] = torch.zeros_like(param)
                    state["next_v"] = torch.zeros_like(param)
                next_m, next_v = state["next_m"], state["next_v"]
                next_m.mul_(beta1).add_(param.grad, alpha=1 - beta1)
                next_v.mul_(beta2).addcmul_(param.grad, param.grad, value=1 - beta2)
                update = next_m / (next_v.sqrt() + group["eps"])
                if group["weight_decay"] > 0.0:
                    update.add_(param, alpha=group["weight_decay"])
                param.add_(update, alpha=-group["lr"])
                state["step"] += 1
        return loss


def build_optimizer(groups: list[dict], run_cfg, init_lr: float, weight_decay: float) -> Optimizer:
    """``run.optimizer`` (``adamw``, default, or ``bert_adam``) over ``groups``, with
    ``run.beta1`` / ``run.beta2`` / ``run.eps`` (defaults: AdamW 0.9 / 0.999 / 1e-8,
    BertAdam 0.9 / 0.98 / 1e-6), and gradient clipping when ``run.grad_clip_norm > 0``
    (see :func:`clip_gradients_before_each_step`)."""
    name = run_cfg.get("optimizer", "adamw")
    if name not in OPTIMIZERS:
        raise ValueError(f"run.optimizer must be one of {OPTIMIZERS}, got {name!r}")
    beta2_default, eps_default = (0.999, 1e-8) if name == "adamw" else (0.98, 1e-6)
    betas = (float(run_cfg.get("beta1", 0.9)), float(run_cfg.get("beta2", beta2_default)))
    eps = float(run_cfg.get("eps", eps_default))
    if name == "adamw":
        optimizer = torch.optim.AdamW(
            groups, lr=init_lr, weight_decay=weight_decay, betas=betas, eps=eps
        )
    else:
        optimizer = BertAdam(groups, lr=init_lr, weight_decay=weight_decay, betas=betas, eps=eps)
    max_norm = float(run_cfg.get("grad_clip_norm", 0.0) or 0.0)
    if max_norm > 0:
        clip_gradients_before_each_step(
            optimizer, max_norm, run_cfg.get("grad_clip_mode", "global")
        )
    return optimizer


def clip_gradients_before_each_step(optimizer: Optimizer, max_norm: float, mode: str) -> None:
    """Clip gradients right before every ``optimizer.step()`` (after AMP's unscaling, after
    DDP's all-reduce): ``global`` clips the norm of all gradients together (CLIP4Clip's,
    X-CLIP's, X-Pool's and TeachCLIP's training loops, ``torch.nn.utils.clip_grad_norm_``),
    ``per_parameter`` each parameter's gradient on its own (BertAdam's inner clip alone)."""
    if mode not in GRAD_CLIP_MODES:
        raise ValueError(f"run.grad_clip_mode must be one of {GRAD_CLIP_MODES}, got {mode!r}")

    def clip(opt, args, kwargs):
        params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
        if mode == "global":
            torch.nn.utils.clip_grad_norm_(params, max_norm)
        else:
            for param in params:
                torch.nn.utils.clip_grad_norm_(param, max_norm)

    optimizer.register_step_pre_hook(clip)


@registry.register_lr_scheduler("warmup_cosine_progress_group_lr")
class GroupScaledProgressWarmupCosineLR(GroupScaledWarmupCosineLR):
    """CLIP4Clip's ``warmup_cosine`` per iteration, each group scaled by its ``lr_scale``.

    At global step ``t`` of ``T = max_epoch * iters_per_epoch``, with ``x = t / T``:
    ``init_lr * x / warmup_proportion`` during the warm-up, then
    ``init_lr * 0.5 * (1 + cos(pi * x))`` (cosine of the global progress, not of the
    progress after warm-up). ``run.warmup_proportion`` (CLIP4Clip: 0.1); ``min_lr`` and
    ``warmup_steps`` are not used.
    """

    def __init__(self, optimizer, max_epoch, init_lr, iters_per_epoch=None, **kwargs):
        super().__init__(optimizer, max_epoch, min_lr=0.0, init_lr=init_lr)
        if not iters_per_epoch:
            raise ValueError("warmup_cosine_progress_group_lr needs iters_per_epoch (a runner)")
        self.iters_per_epoch = int(iters_per_epoch)
        proportion = kwargs.get("warmup_proportion")
        self.warmup_proportion = 0.1 if proportion is None else float(proportion)
        if not 0.0 <= self.warmup_proportion < 1.0:
            raise ValueError(
                f"run.warmup_proportion must be in [0, 1), got {self.warmup_proportion}"
            )

    def lr_at(self, cur_epoch: int, cur_step: int) -> float:
        step = cur_epoch * self.iters_per_epoch + cur_step
        progress = step / max(self.max_epoch * self.iters_per_epoch, 1)
        if progress < self.warmup_proportion:
            return self.init_lr * progress / self.warmup_proportion
        return self.init_lr * 0.5 * (1.0 + math.cos(math.pi * progress))
