"""Training curves of a prompt-learning run from its ``train_log.jsonl`` (one JSON line per epoch, written by
:class:`promptsync.engine.loops.train_loop.PromptTrainLoop`): the training loss, the training and validation
accuracy (validation only when the run had a validation set), and the learning rate of each epoch (logarithmic when
it spans two decades or more). The epoch the run kept (``selected_epoch`` of run.json) is a vertical line.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable

import numpy as np

from promptsync.errors import CorruptFileError
from promptsync.evaluation.predictions import read_records

from .figure import PlotInputError, new_figure, save_png

REQUIRED = ('epoch', 'loss')
LOG_SPAN = 100.0


def read_train_log(path: str | Path) -> list[dict]:
    """The epochs of a training log (a torn last line, from an interrupted write, is dropped)."""
    try:
        return read_records(Path(path))
    except ValueError as err:
        raise CorruptFileError(f'{path} is not a JSON-lines training log: {err}', where=str(path)) from None


def _series(records: list[dict], key: str) -> np.ndarray:
    return np.array([math.nan if r.get(key) is None else float(r[key]) for r in records])


def training_series(records: Iterable[dict]) -> dict[str, np.ndarray]:
    """The curves as arrays over epochs: ``epoch``, ``loss``, ``train_acc``, ``val_acc``, ``lr`` (NaN: not logged)."""
    records = list(records)
    if not records:
        raise PlotInputError('the training log has no epoch yet: nothing to draw', where='train_log.jsonl')
    for i, record in enumerate(records):
        missing = [k for k in REQUIRED if k not in record]
        if missing:
            raise PlotInputError(f'epoch record {i + 1} of the training log has no {missing}', where='train_log.jsonl',
                                 fix='pass the train_log.jsonl a training run wrote')
    return {key: _series(records, key) for key in ('epoch', 'loss', 'train_acc', 'val_acc', 'lr')}


def training_figure(records: Iterable[dict], selected_epoch: int | None = None, title: str | None = None):
    """``(figure, series)``: the loss, accuracy and learning-rate panels and the numbers they show."""
    series = training_series(records)
    epoch = series['epoch']
    panels = [('loss', ['loss'])]
    accuracy = [k for k in ('train_acc', 'val_acc') if not np.isnan(series[k]).all()]
    if accuracy:
        panels.append(('accuracy (%)', accuracy))
    if not np.isnan(series['lr']).all():
        panels.append(('learning rate', ['lr']))
    figure = new_figure(4.0 * len(panels), 3.4)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    for ax, (label, keys) in zip(axes, panels):
        for key in keys:
            ax.plot(epoch, series[key], marker='o', markersize=3, label=key)
        if keys == ['lr']:
            lr = series['lr'][~np.isnan(series['lr'])]
            if (lr > 0).all() and lr.max() / lr.min() >= LOG_SPAN:
                ax.set_yscale('log')
        if selected_epoch is not None:
            ax.axvline(selected_epoch, color='grey', linestyle='--', label=f'selected epoch {selected_epoch}')
        ax.set(xlabel='epoch', ylabel=label)
        ax.grid(alpha=0.3)
        if len(keys) > 1 or selected_epoch is not None:
            ax.legend(fontsize=7)
    if len(epoch) <= 12:
        for ax in axes:
            ax.set_xticks(epoch)
    figure.suptitle(title or f'training: {len(epoch)} epochs', fontsize=10)
    return figure, series


def training_curves(log: str | Path | Iterable[dict], *, path: str | Path, selected_epoch: int | None = None,
                    title: str | None = None) -> Path:
    """Write the training curves of ``log`` (a train_log.jsonl path, or its records) to ``path``."""
    records = read_train_log(log) if isinstance(log, (str, Path)) else list(log)
    return save_png(training_figure(records, selected_epoch, title)[0], path)
