"""UPSR's trainer: RecBole's ``Trainer`` with the optimiser settings a pre-trained PLM needs.

RecBole picks a model-specific trainer by name (``<Model>Trainer`` in ``recbole.trainer``),
so ``run_recbole(model='UPSR')`` and every other RecBole entry point train UPSR with it.
"""

from __future__ import annotations

import torch
from recbole.trainer import Trainer


class UPSRTrainer(Trainer):
    r"""Two learning rates and a warm-up: the PLM's pre-trained weights train at
    ``learning_rate * upsr_pretrained_lr_scale`` and the weights that started random at
    ``learning_rate`` (``UPSR.parameter_groups``); the rate rises linearly over the first
    ``upsr_warmup_steps`` optimiser steps (0: no warm-up)."""

    def _build_optimizer(self, **kwargs):
        if "params" not in kwargs and hasattr(self.model, "parameter_groups"):
            kwargs["params"] = self.model.parameter_groups(
                kwargs.get("learning_rate", self.learning_rate)
            )
        optimizer = super()._build_optimizer(**kwargs)
        steps = getattr(self.model, "warmup_steps", 0) or 0
        if steps > 0:
            warmup = torch.optim.lr_scheduler.LambdaLR(
                optimizer, lambda step: min(1.0, (step + 1) / steps)
            )
            optimizer.register_step_post_hook(lambda *_: warmup.step())
        return optimizer
