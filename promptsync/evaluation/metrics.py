"""Metrics (``METRICS``): numbers computed from a :class:`PredictionTable`."""
from __future__ import annotations

from typing import Iterable, Sequence

import torch

from promptsync.registry import METRICS

from .predictions import TOPK_STORED, PredictionTable


@METRICS.register_module()
class Accuracy:
    """Top-k accuracy in percent (``top1``, ``top5``); with fewer than k classes it is top-C accuracy."""

    def __init__(self, topk: Sequence[int] = (1, 5)):
        self.topk = tuple(int(k) for k in topk)
        too_big = [k for k in self.topk if k > TOPK_STORED]
        if too_big:
            raise ValueError(f'top-k above {TOPK_STORED} is not stored with the predictions: {too_big}')

    def compute(self, table: PredictionTable) -> dict[str, float]:
        if len(table) == 0:
            return {f'top{k}': float('nan') for k in self.topk}
        out = {}
        for k in self.topk:
            hit = (table.topk[:, :k] == table.labels[:, None]).any(dim=1)
            out[f'top{k}'] = 100.0 * hit.float().mean().item()
        return out


@METRICS.register_module()
class MeanPerClassAccuracy:
    """Top-1 accuracy averaged over the classes present (robust to class-imbalanced test streams)."""

    def compute(self, table: PredictionTable) -> dict[str, float]:
        if len(table) == 0:
            return {'mean_class_top1': float('nan')}
        labels = table.labels
        hit = (table.topk[:, 0] == labels).double()
        n = int(labels.max()) + 1
        per_class_hits = torch.bincount(labels, weights=hit, minlength=n)
        counts = torch.bincount(labels, minlength=n)
        present = counts > 0
        return {'mean_class_top1': 100.0 * (per_class_hits[present] / counts[present]).mean().item()}


def compute_metrics(metrics: Iterable, table: PredictionTable) -> dict[str, float]:
    out: dict[str, float] = {}
    for m in metrics:
        out.update(m.compute(table))
    return out
