"""Reliability diagram: accuracy per equal-width confidence bin against the diagonal, the gap, and the bin counts.

The bins are exactly those of :class:`promptsync.evaluation.calibration.ExpectedCalibrationError` (its
``confidence_bin``): bin ``b`` holds the confidences in ``((b - 1) / B, b / B]``, a confidence of 0 falls in the first,
computed in float64 from the confidences as given; samples with a non-finite confidence (failed samples) are left
out and counted. The ECE in the title is ``100 * sum_b |sum_{i in b} (correct_i - conf_i)| / N``, the metric's value
for the same inputs: pass the run's ``PredictionTable.confidence`` and ``topk[:, 0] == labels`` to get the figure
of the number in metrics.json.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from promptsync.evaluation.calibration import confidence_bin

from .figure import PlotInputError, new_figure, save_png

PROBABILITY_SLACK = 1e-6  # float32 softmax maxima can exceed 1 by rounding


@dataclass
class ReliabilityBins:
    """What the diagram shows; per-bin arrays have ``bins`` entries (NaN accuracy/confidence in an empty bin)."""
    edges: np.ndarray       # [bins + 1] bin edges 0, 1/B, ..., 1
    count: np.ndarray       # [bins] samples per bin
    accuracy: np.ndarray    # [bins] fraction correct (0..1)
    confidence: np.ndarray  # [bins] mean confidence (0..1)
    ece: float              # percent, as ExpectedCalibrationError
    total: int              # samples binned (finite confidence)
    excluded: int           # samples left out (non-finite confidence)

    @property
    def mean_confidence(self) -> float:
        return float(np.nansum(self.confidence * self.count) / self.total)

    @property
    def overall_accuracy(self) -> float:
        return float(np.nansum(self.accuracy * self.count) / self.total)


def _vector(values, name: str) -> torch.Tensor:
    tensor = values.detach().cpu() if isinstance(values, torch.Tensor) else (
        torch.from_numpy(np.ascontiguousarray(values)) if isinstance(values, np.ndarray)
        else torch.tensor(list(values), dtype=torch.float64))
    if tensor.dim() != 1:
        raise PlotInputError(f'{name} must be one value per sample (1-D), got shape {tuple(tensor.shape)}', where=name)
    return tensor


def reliability_bins(confidences, correct, bins: int = 15) -> ReliabilityBins:
    """Bin ``confidences`` (top-1 probabilities) and ``correct`` (bool / 0-1 per sample) as the ECE metric does."""
    if int(bins) != bins or bins < 1:
        raise PlotInputError(f'bins must be a positive integer, got {bins!r}', where='bins')
    bins = int(bins)
    conf, hit = _vector(confidences, 'confidences'), _vector(correct, 'correct')
    if conf.numel() != hit.numel():
        raise PlotInputError(f'{conf.numel()} confidences but {hit.numel()} correct flags', where='correct',
                             fix='give one confidence and one correct flag per sample')
    if conf.dtype == torch.bool or not (conf.is_floating_point()):
        raise PlotInputError(f'confidences must be probabilities (floats), got {conf.dtype}', where='confidences')
    conf = conf.double()
    hit = hit.double()
    finite = torch.isfinite(conf)
    conf, hit = conf[finite], hit[finite]
    if not bool(((hit == 0) | (hit == 1)).all()):
        raise PlotInputError('correct must be True/False (or 0/1) per sample', where='correct')
    if conf.numel() == 0:
        raise PlotInputError('no sample has a finite confidence: nothing to draw', where='confidences')
    if bool((conf < 0).any() or (conf > 1 + PROBABILITY_SLACK).any()):
        raise PlotInputError(f'confidences must lie in [0, 1], got min {float(conf.min()):.6g} max '
                             f'{float(conf.max()):.6g}', where='confidences', fix='pass softmax probabilities')
    index = confidence_bin(conf, bins)
    gap = torch.zeros(bins, dtype=torch.float64).index_add(0, index, hit - conf)
    count = torch.bincount(index, minlength=bins).double()
    sum_hit = torch.zeros(bins, dtype=torch.float64).index_add(0, index, hit)
    sum_conf = torch.zeros(bins, dtype=torch.float64).index_add(0, index, conf)
    with np.errstate(invalid='ignore', divide='ignore'):
        accuracy = (sum_hit / count).numpy()
        mean_conf = (sum_conf / count).numpy()
    return ReliabilityBins(edges=np.linspace(0.0, 1.0, bins + 1), count=count.long().numpy(), accuracy=accuracy,
                           confidence=mean_conf, ece=100.0 * float(gap.abs().sum() / conf.numel()),
                           total=int(conf.numel()), excluded=int((~finite).sum()))


def reliability_figure(binned: ReliabilityBins, title: str | None = None):
    """The figure of ``binned``: accuracy bars with the gap to each bin's mean confidence, then the bin counts."""
    figure = new_figure(5.0, 6.0)
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw=dict(height_ratios=(3, 1)))
    left, width = binned.edges[:-1], np.diff(binned.edges)
    filled = binned.count > 0
    top.bar(left[filled], binned.accuracy[filled], width[filled], align='edge', color='#4477aa', edgecolor='black',
            linewidth=0.6, label='accuracy')
    top.bar(left[filled], (binned.confidence - binned.accuracy)[filled], width[filled],
            bottom=binned.accuracy[filled], align='edge', color='#ee6677', alpha=0.45, edgecolor='#cc3344',
            hatch='//', linewidth=0.6, label='gap to mean confidence')
    top.plot([0, 1], [0, 1], linestyle='--', color='grey', label='perfect calibration')
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel='accuracy')
    top.legend(loc='upper left', fontsize=8)
    excluded = f', {binned.excluded} failed left out' if binned.excluded else ''
    top.set_title(f'{title + chr(10) if title else ""}ECE {binned.ece:.2f}% ({len(binned.count)} bins, '
                  f'N={binned.total}{excluded})', fontsize=10)
    bottom.bar(left, binned.count, width, align='edge', color='#999999', edgecolor='black', linewidth=0.6,
               label='samples')
    bottom.axvline(binned.mean_confidence, color='#cc3344', linestyle='--', label='mean confidence')
    bottom.axvline(binned.overall_accuracy, color='#4477aa', label='accuracy')
    bottom.set(xlabel='confidence', ylabel='samples')
    bottom.legend(loc='upper left', fontsize=7)
    return figure


def reliability_diagram(confidences, correct, bins: int = 15, *, path: str | Path, title: str | None = None) -> Path:
    """Write the reliability diagram of ``confidences`` / ``correct`` (numpy, torch or lists) to ``path``."""
    return save_png(reliability_figure(reliability_bins(confidences, correct, bins), title), path)
