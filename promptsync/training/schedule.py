"""Per-epoch learning-rate schedule of CoOp/MaPLe: a constant warm-up, then cosine annealing.

Reproduces Dassl's ``ConstantWarmupScheduler(CosineAnnealingLR(optimizer, T_max=epochs), warmup_epoch, cons_lr)``
as MaPLe/CoOp use it (``scheduler.step()`` once per epoch). For 0-based epoch ``e``::

    lr(e) = warmup_lr                                                           e <  warmup_epochs
    lr(e) = min_lr + (base_lr - min_lr) * (1 + cos(pi * (e - warmup_epochs) / epochs)) / 2   otherwise

The cosine starts *after* the warm-up and keeps ``T_max = epochs`` (Dassl's behaviour), so with MaPLe's
5 epochs and 1 warm-up epoch the rates are 1e-5, lr, lr*cos-factor(1/5), (2/5), (3/5). The lr is a closed
form of ``last_epoch``, so the state dict (plain numbers) restores it exactly.
"""
from __future__ import annotations

import math

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from promptsync.registry import PARAM_SCHEDULERS


def warmup_cosine_lr(epoch: int, base_lr: float, epochs: int, warmup_epochs: int = 0,
                     warmup_lr: float = 1e-5, min_lr: float = 0.0) -> float:
    """The learning rate of 0-based ``epoch`` (see the module docstring)."""
    if epoch < warmup_epochs:
        return warmup_lr
    t = epoch - warmup_epochs
    return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * t / epochs)) / 2


@PARAM_SCHEDULERS.register_module()
class WarmupCosineLR(LRScheduler):
    """Args:
        optimizer: the optimizer whose param groups' ``lr`` is the base lr.
        epochs: total epochs (the cosine's ``T_max``, as Dassl).
        warmup_epochs: epochs at the constant ``warmup_lr`` before the cosine (MaPLe: 1 at 1e-5; 0 = none).
        min_lr: the cosine's floor (``eta_min``; Dassl: 0).
    """

    def __init__(self, optimizer: Optimizer, epochs: int, warmup_epochs: int = 0, warmup_lr: float = 1e-5,
                 min_lr: float = 0.0, last_epoch: int = -1):
        if epochs < 1:
            raise ValueError(f'epochs must be >= 1, got {epochs}')
        if not 0 <= warmup_epochs < epochs:
            raise ValueError(f'warmup_epochs={warmup_epochs} must be in 0..epochs-1 ({epochs - 1}) so that at '
                             'least one epoch trains at the configured lr')
        self.epochs, self.warmup_epochs = int(epochs), int(warmup_epochs)
        self.warmup_lr, self.min_lr = float(warmup_lr), float(min_lr)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        return [warmup_cosine_lr(self.last_epoch, base, self.epochs, self.warmup_epochs, self.warmup_lr, self.min_lr)
                for base in self.base_lrs]

    _get_closed_form_lr = get_lr
