"""Per-class accuracy of a run: one row per class of the label space (``metrics.json``, key ``per_class``).

Kept apart from the scalar metrics: on ImageNet it is 1,000 rows. A class with no test image has ``n = 0`` and
``top1 = None`` (not 0: nothing was measured), and still shows how often it was *predicted* — a collapsed stream
predicts classes it never contains.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .predictions import PredictionTable


def per_class_accuracy(table: PredictionTable, classes: Sequence[dict]) -> list[dict]:
    """``[dict(label, name, n, correct, top1, predicted)]`` for every class of ``classes`` (the run's class table,
    ``run.json['classes']``); ``top1`` in percent, ``predicted`` = samples predicted as the class."""
    n_classes = max(len(classes), int(table.labels.max()) + 1 if len(table) else 0)
    labels, preds = table.labels, table.topk[:, 0] if len(table) else table.labels
    counts = torch.bincount(labels, minlength=n_classes)
    hits = torch.bincount(labels, weights=(preds == labels).double(), minlength=n_classes)
    predicted = torch.bincount(preds[preds >= 0], minlength=n_classes)
    rows = []
    for c in range(n_classes):
        n = int(counts[c])
        name = classes[c].get('name') if c < len(classes) else None
        rows.append(dict(label=c, name=name, n=n, correct=int(hits[c]), predicted=int(predicted[c]),
                         top1=round(100.0 * float(hits[c]) / n, 4) if n else None))
    return rows
