"""TTA hooks (``TTA_HOOKS``): observe or change every stage of the TTA loop.

A hook overrides any of the no-op stage methods below. Sample-level stages receive the
:class:`~promptsync.tta.context.TTAContext`, which they may modify (e.g. replace ``ctx.selected``
after selection, or scale ``ctx.loss`` before the backward pass). Hooks run in ascending ``priority``.
"""
from __future__ import annotations

from typing import Iterable

from promptsync.registry import TTA_HOOKS

STAGES = ('before_run', 'before_sample', 'after_forward', 'after_selection', 'after_loss', 'after_step',
          'after_predict', 'after_sample', 'after_batch', 'after_run')


class TTAHook:
    """Base hook; every stage is a no-op."""

    priority: int = 50

    def before_run(self, runner) -> None: ...

    def before_sample(self, ctx) -> None: ...

    def after_forward(self, ctx) -> None: ...

    def after_selection(self, ctx) -> None: ...

    def after_loss(self, ctx) -> None: ...

    def after_step(self, ctx) -> None: ...

    def after_predict(self, ctx, result) -> None: ...

    def after_sample(self, ctx, result) -> None: ...

    def after_batch(self, results) -> None: ...

    def after_run(self, runner, metrics) -> None: ...


class HookList:
    """Ordered hooks with one ``call(stage, ...)`` entry point."""

    def __init__(self, hooks: Iterable = ()):
        built = [TTA_HOOKS.build(h) if isinstance(h, dict) else h for h in hooks]
        for h in built:
            if not isinstance(h, TTAHook):
                raise TypeError(f'{type(h).__name__} is not a TTAHook; subclass promptsync.tta.hooks.TTAHook')
        self.hooks = sorted(built, key=lambda h: h.priority)

    def call(self, stage: str, *args) -> None:
        if stage not in STAGES:
            raise ValueError(f"unknown hook stage '{stage}'; stages: {STAGES}")
        for h in self.hooks:
            getattr(h, stage)(*args)

    def __iter__(self):
        return iter(self.hooks)

    def __len__(self) -> int:
        return len(self.hooks)
