"""Streaming per-class mean and variance (Chan et al.'s parallel form of Welford's update), vectorised.

A batch updates every class it contains at once: per-class batch counts, means and squared deviations
come from ``index_add_``, then merge with the running state in one step. No per-class Python loop, no
data kept in memory, and the result equals a two-pass computation up to float rounding (float64 by default).
"""
from __future__ import annotations

from typing import Sequence

import torch


class ClassStatsAccumulator:
    """Running ``count [K]``, ``mean [K, *shape]`` and ``m2 [K, *shape]`` (sum of squared deviations)."""

    def __init__(self, num_classes: int, shape: Sequence[int], dtype: torch.dtype = torch.float64,
                 device: str | torch.device = 'cpu'):
        self.num_classes = int(num_classes)
        self.shape = tuple(int(s) for s in shape)
        self.dtype = dtype
        self.count = torch.zeros(self.num_classes, dtype=torch.long, device=device)
        self.mean = torch.zeros(self.num_classes, *self.shape, dtype=dtype, device=device)
        self.m2 = torch.zeros_like(self.mean)

    def _bcast(self, v: torch.Tensor) -> torch.Tensor:
        return v.view(-1, *([1] * len(self.shape)))

    @torch.no_grad()
    def update(self, x: torch.Tensor, labels: torch.Tensor) -> None:
        """Add samples ``x [B, *shape]`` with class ``labels [B]``."""
        if tuple(x.shape[1:]) != self.shape:
            raise ValueError(f'samples of shape {tuple(x.shape[1:])} do not match the accumulator {self.shape}')
        labels = labels.to(self.count.device).long()
        if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ValueError(f'labels must be in 0..{self.num_classes - 1}')
        x = x.to(device=self.mean.device, dtype=self.dtype)
        present, inverse = torch.unique(labels, return_inverse=True)
        n_b = torch.bincount(inverse, minlength=present.numel()).to(self.dtype)
        mean_b = torch.zeros(present.numel(), *self.shape, dtype=self.dtype, device=x.device).index_add_(0, inverse, x)
        mean_b /= self._bcast(n_b)
        m2_b = torch.zeros_like(mean_b).index_add_(0, inverse, (x - mean_b[inverse]) ** 2)
        n_a = self.count[present].to(self.dtype)
        n = n_a + n_b
        delta = mean_b - self.mean[present]
        self.mean[present] += delta * self._bcast(n_b / n)
        self.m2[present] += m2_b + delta ** 2 * self._bcast(n_a * n_b / n)
        self.count[present] += n_b.long()

    def variance(self) -> torch.Tensor:
        """Biased (population) variance per class; zero for classes never seen."""
        return self.m2 / self._bcast(self.count.clamp(min=1).to(self.dtype))

    def state_dict(self) -> dict[str, torch.Tensor]:
        return dict(count=self.count, mean=self.mean, m2=self.m2)

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for key in ('count', 'mean', 'm2'):
            if tuple(state[key].shape) != tuple(getattr(self, key).shape):
                raise ValueError(f'accumulator state {key} has shape {tuple(state[key].shape)}, '
                                 f'expected {tuple(getattr(self, key).shape)}')
            getattr(self, key).copy_(state[key])


def combine_classes(count: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pool per-class statistics into one (law of total variance); classes with no samples are ignored."""
    w = count.to(mean.dtype)
    w = w / w.sum().clamp(min=1)
    w = w.view(-1, *([1] * (mean.dim() - 1)))
    pooled_mean = (w * mean).sum(dim=0)
    pooled_var = (w * (var + (mean - pooled_mean) ** 2)).sum(dim=0)
    return pooled_mean, pooled_var
