"""Entropy losses over the confident views (TPT)."""
from __future__ import annotations

import math

import torch

from promptsync.registry import LOSSES

from .base import TTALoss


def marginal_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the views' mean probability, computed in log space.

    ``H(p_bar) = -sum_c p_bar_c log p_bar_c`` with ``log p_bar = logsumexp_i log p_i - log S``.
    """
    logp = logits.float().log_softmax(dim=-1)
    log_avg = torch.logsumexp(logp, dim=0) - math.log(logp.shape[0])
    log_avg = log_avg.clamp(min=torch.finfo(log_avg.dtype).min)
    return -(log_avg.exp() * log_avg).sum()


@LOSSES.register_module()
class MarginalEntropyLoss(TTALoss):
    """TPT's loss: ``H( (1/|S|) sum_{i in S} softmax(z_i) )`` over the selected views ``S``."""

    batch_safe = True

    def views_read(self, ctx) -> torch.Tensor:
        return ctx.selected

    def forward(self, ctx) -> torch.Tensor:
        return marginal_entropy(ctx.selected_logits)


@LOSSES.register_module()
class MeanViewEntropyLoss(TTALoss):
    """Mean of the per-view entropies ``(1/|S|) sum_{i in S} H(softmax(z_i))`` (TENT-style ablation)."""

    batch_safe = True

    def views_read(self, ctx) -> torch.Tensor:
        return ctx.selected

    def forward(self, ctx) -> torch.Tensor:
        logp = ctx.selected_logits.float().log_softmax(dim=-1)
        return -(logp.exp() * logp).sum(dim=-1).mean()
