"""Base class of TTA methods: turn a collated batch of samples into per-sample results."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Any, Mapping

import torch

from promptsync.tta.context import SampleResult
from promptsync.hooks import HookList


class TTAMethod(metaclass=ABCMeta):
    """A batch is ``dict(views=[B, V, 3, H, W], label=[B], index=[B], path=[B])``.

    ``resources`` are the outside files the run's config names and the Runner has checked (by role:
    ``'prototypes'``); a method hands them to the pieces that need them (losses' ``setup``).

    Methods talk about *a batch of samples, each with V views*: an episodic method may adapt the
    samples one after another or, later, all at once with per-sample prompt copies.
    """

    def __init__(self, model, hooks: HookList | None = None, seed: int = 0,
                 resources: Mapping[str, Any] | None = None):
        self.model = model                          # its label_space holds the test classes (names, ids)
        self.hooks = hooks if hooks is not None else HookList()
        self.seed = seed
        self.resources = dict(resources or {})      # the run's checked files by role, e.g. {'prototypes': path}

    @property
    def device(self) -> torch.device:
        return self.model.backbone.device

    @abstractmethod
    def process_batch(self, batch: dict[str, Any]) -> list[SampleResult]:
        """Adapt (if the method adapts) and predict every sample of the batch."""

    def summary(self) -> dict[str, Any]:
        """Counters the method wants recorded in ``metrics.json``."""
        return {}

    @staticmethod
    def unpack(batch: dict[str, Any]):
        """``(views, labels, indices, paths)`` with python ints for labels and indices."""
        paths = batch.get('path') or [''] * len(batch['index'])
        return batch['views'], [int(x) for x in batch['label']], [int(x) for x in batch['index']], list(paths)
