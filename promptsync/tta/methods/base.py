"""Base class of TTA methods: turn a collated batch of samples into per-sample results."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Any, Mapping

import torch

from promptsync.errors import ProvenanceError
from promptsync.tta.context import SampleResult, TTAContext
from promptsync.hooks import HookList


class TTAMethod(metaclass=ABCMeta):
    """A batch is ``dict(views=[B, V, 3, H, W], label=[B], index=[B], path=[B])``.

    ``resources`` are the outside files the run's config names and the Runner has checked (by role:
    ``'prototypes'``); a method hands them to the pieces that need them (losses' ``setup``).

    Methods talk about *a batch of samples, each with V views*: an episodic method may adapt the
    samples one after another or, later, all at once with per-sample prompt copies.
    """

    #: ``True`` for an *online* method (TDA, DPE): a prediction depends on the samples seen before it, so the stream
    #: order (``data.stream``) is part of the result. The loop then runs the whole stream on one process (sharding
    #: is refused) and saves :meth:`state_dict` after every batch, so that a resumed run continues exactly where
    #: the saved state ends. Such a method must process a loaded batch's samples one after another, in order, so
    #: that its predictions do not depend on ``data.batch_size`` (:class:`PerSampleMethod` does).
    stateful: bool = False

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

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The state carried across samples as named tensors (saved with safetensors); ``{}`` when stateless."""
        return {}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore what :meth:`state_dict` returned (a stateful method must override both)."""
        if state:  # a state file of another method (an online one) in this work dir: refuse, never ignore it
            raise ProvenanceError(f'{type(self).__name__} carries no state across samples, but a saved method state '
                                  f'with {len(state)} tensors was given to it', where='method_state.safetensors',
                                  fix='use another --work-dir, or --no-resume (the file belongs to another run)')

    @staticmethod
    def unpack(batch: dict[str, Any]):
        """``(views, labels, indices, paths)`` with python ints for labels and indices."""
        paths = batch.get('path') or [''] * len(batch['index'])
        return batch['views'], [int(x) for x in batch['label']], [int(x) for x in batch['index']], list(paths)


class PerSampleMethod(TTAMethod):
    """A method that takes a loaded batch's samples one after another, in order (:meth:`process_sample`), so that
    its predictions do not depend on ``data.batch_size`` — what an online method needs, and the simplest shape for a
    training-free one. :meth:`begin_sample` is the shared first stage: every view encoded once, without gradient."""

    @abstractmethod
    def process_sample(self, views: torch.Tensor, label: int, index: int, path: str = '') -> SampleResult:
        """Adapt (if the method adapts) and predict one sample with views ``[V, 3, H, W]``."""

    def process_batch(self, batch: dict[str, Any]) -> list[SampleResult]:
        views, labels, indices, paths = self.unpack(batch)
        return [self.process_sample(views[b], labels[b], indices[b], paths[b]) for b in range(len(labels))]

    def begin_sample(self, views: torch.Tensor, label: int, index: int, text_features: torch.Tensor) -> TTAContext:
        """The sample's context after ``before_sample``, with the image features of every view (current prompts, no
        gradient), ``text_features`` and their logits; ``after_forward`` has seen it."""
        ctx = TTAContext(index=index, label=label, views=views.to(self.device), model=self.model)
        self.hooks.call('before_sample', ctx)
        with torch.no_grad():
            ctx.image_features = self.model.image_features(ctx.views)          # every view, one pass
            ctx.text_features = text_features
            ctx.logits = self.model.logits(ctx.image_features, text_features)
        self.hooks.call('after_forward', ctx)
        return ctx
