"""Confident-view selection (``VIEW_SELECTORS``): which views the losses see."""
from __future__ import annotations

import torch

from promptsync.registry import VIEW_SELECTORS


def view_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each row's softmax, ``[V]``."""
    logp = logits.float().log_softmax(dim=-1)
    return -(logp.exp() * logp).sum(dim=-1)


@VIEW_SELECTORS.register_module()
class ConfidenceSelection:
    """The ``int(V * ratio)`` lowest-entropy views (TPT: 10% of 64 -> 6), lowest entropy first.

    Args:
        ratio: share of views kept.
        min_views: keep at least this many.
        include_original: always keep view 0 (the test image itself) in addition.
    """

    def __init__(self, ratio: float = 0.1, min_views: int = 1, include_original: bool = False):
        if not 0 < ratio <= 1:
            raise ValueError(f'selection ratio must be in (0, 1], got {ratio}')
        self.ratio, self.min_views, self.include_original = ratio, min_views, include_original

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        n = logits.shape[0]
        k = min(n, max(self.min_views, int(n * self.ratio)))
        idx = torch.argsort(view_entropy(logits.detach()), descending=False, stable=True)[:k]
        if self.include_original and not bool((idx == 0).any()):
            idx = torch.cat([idx, idx.new_zeros(1)])
        return idx


@VIEW_SELECTORS.register_module()
class AllViews:
    """No filtering: every view is used (TPT's "without confidence selection" ablation)."""

    def __call__(self, logits: torch.Tensor) -> torch.Tensor:
        return torch.arange(logits.shape[0], device=logits.device)
