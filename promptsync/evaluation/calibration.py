"""Calibration and collapse metrics (``METRICS``) over a run's predictions.

* ``ExpectedCalibrationError``: ECE in percent over equal-width confidence bins (Guo et al., 2017; C-TPT reports it
  with 15 bins): ``sum_b |B_b| / N * |acc(B_b) - conf(B_b)|``, bins ``(lo, hi]`` with a confidence of 0 in the first.
* ``PredictionCollapse``: how concentrated the predictions of the stream are — the entropy of the predicted-class
  histogram normalised by ``log C`` (1 = every class predicted equally often, 0 = one class only) and the share of the
  most predicted class — next to the same two numbers for the labels, which say what the stream itself allows.

A failed sample (non-finite logits: no prediction, no confidence) is left out of the ECE and counted
(``ece_excluded``); in the collapse measures it predicts no class (the shares are over all samples).
"""
from __future__ import annotations

import math

import torch

from promptsync.registry import METRICS

from .predictions import PredictionTable


def confidence_bin(confidence: torch.Tensor, bins: int) -> torch.Tensor:
    """The bin of each confidence: ``ceil(conf * B) - 1`` clamped to ``[0, B - 1]`` (bins ``(lo, hi]``; 0 in the first).
    The reliability diagram (promptsync/visualization/reliability.py) bins with this function too."""
    return (torch.ceil(confidence * bins).long() - 1).clamp(0, bins - 1)


@METRICS.register_module()
class ExpectedCalibrationError:
    """Args: ``bins``: equal-width confidence bins (15, as C-TPT)."""

    def __init__(self, bins: int = 15):
        if int(bins) < 1:
            raise ValueError(f'ExpectedCalibrationError needs bins >= 1, got {bins}')
        self.bins = int(bins)

    def compute(self, table: PredictionTable) -> dict[str, float]:
        ok = torch.isfinite(table.confidence)
        excluded = int((~ok).sum())
        if not bool(ok.any()):
            return {'ece': float('nan'), 'ece_excluded': excluded}
        conf = table.confidence[ok].double()
        correct = (table.topk[ok, 0] == table.labels[ok]).double()
        index = confidence_bin(conf, self.bins)
        gap = torch.zeros(self.bins, dtype=torch.float64).index_add(0, index, correct - conf)
        return {'ece': 100.0 * float(gap.abs().sum() / conf.numel()), 'ece_excluded': excluded}


def _concentration(classes: torch.Tensor, n_classes: int, n: int) -> tuple[float, float]:
    """(entropy of the histogram / log C, share of the most frequent class) of ``classes`` among ``n`` samples."""
    counts = torch.bincount(classes, minlength=n_classes).double()
    share = counts / n
    nonzero = share[share > 0]
    entropy = float(-(nonzero * nonzero.log()).sum()) / math.log(n_classes) if n_classes > 1 else 0.0
    return entropy, float(share.max())


@METRICS.register_module()
class PredictionCollapse:
    """Args: ``num_classes``: the size of the label space (``None`` = the run's classes, which the table carries)."""

    def __init__(self, num_classes: int | None = None):
        self.num_classes = num_classes

    def compute(self, table: PredictionTable) -> dict[str, float]:
        n_classes = self.num_classes or table.num_classes
        if not n_classes:
            raise ValueError('PredictionCollapse needs the number of classes: give num_classes=, or compute it on a '
                             "run's predictions (the run records its classes)")
        n = len(table)
        if n == 0:
            return dict.fromkeys(('pred_entropy', 'pred_max_share', 'label_entropy', 'label_max_share'), float('nan'))
        preds = table.topk[:, 0]
        pred_entropy, pred_share = _concentration(preds[preds >= 0], n_classes, n)
        label_entropy, label_share = _concentration(table.labels, n_classes, n)
        return dict(pred_entropy=pred_entropy, pred_max_share=100.0 * pred_share, label_entropy=label_entropy,
                    label_max_share=100.0 * label_share)
