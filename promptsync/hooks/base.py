"""One hook family for every loop: mmengine's ``Hook`` plus the stages of one test-time adaptation step.

Loop-level stages are mmengine's (``before_run``, ``before_test_epoch``, ``after_test_iter``,
``after_train_epoch``, ``before_save_checkpoint``, ...; the runner is the first argument). The TTA stages below
are called by a TTA method for each sample, also runner-first; sample-level stages receive the
:class:`~promptsync.tta.context.TTAContext`, which a hook may modify (e.g. replace ``ctx.selected`` after
selection, or scale ``ctx.loss`` before the backward pass; see ``batch_safe``). Hooks run in mmengine's priority order
(``'HIGHEST'`` ... ``'NORMAL'`` ... ``'LOWEST'`` or 0-100), ties in the order given. Outside a run (a method used
on its own) the runner argument is ``None``.
"""
from __future__ import annotations

from typing import Any, Iterable

from mmengine.hooks import Hook as MMEngineHook
from mmengine.runner import get_priority

from promptsync.errors import ConfigError
from promptsync.registry import HOOKS

TTA_STAGES = ('before_sample', 'after_forward', 'after_selection', 'after_loss', 'after_step', 'after_predict',
              'after_sample')


class Hook(MMEngineHook):
    """Base hook: every mmengine stage and every TTA stage is a no-op."""

    stages = tuple(MMEngineHook.stages) + TTA_STAGES

    #: Declare ``True`` when the hook's TTA stages only read the context or change ``ctx.selected`` / ``ctx.loss``
    #: (never ``ctx.logits``/features/tokens, never the prompt learner or the model). Then the fast engine keeps
    #: its shortcuts and adapts samples together with the hook; otherwise a run with the hook uses the reference
    #: loop (recorded in metrics.json, ``method_stats.engine``). A hook without TTA stages needs no declaration.
    batch_safe: bool = False

    def before_sample(self, runner, ctx) -> None: ...

    def after_forward(self, runner, ctx) -> None: ...

    def after_selection(self, runner, ctx) -> None: ...

    def after_loss(self, runner, ctx) -> None: ...

    def after_step(self, runner, ctx) -> None: ...

    def after_predict(self, runner, ctx, result) -> None: ...

    def after_sample(self, runner, ctx, result) -> None: ...


#: the name the TTA hooks had before they joined mmengine's family
TTAHook = Hook


class HookList:
    """Hooks ordered by priority, with one ``call(stage, ...)`` entry point that passes the runner first.

    Entries are built hooks or ``HOOKS`` configs (a config may carry ``priority``). A plain mmengine hook is
    accepted: it has no TTA stages, so those calls skip it.
    """

    def __init__(self, hooks: Iterable = (), runner: Any = None):
        built = []
        for h in hooks:
            if isinstance(h, dict):
                h = dict(h)
                priority = h.pop('priority', None)
                h = HOOKS.build(h)
                if priority is not None:
                    h.priority = priority
            if not isinstance(h, MMEngineHook):
                raise ConfigError(f'{type(h).__name__} is not a hook',
                                  fix='subclass promptsync.hooks.Hook (mmengine.hooks.Hook works for loop stages)')
            built.append(h)
        self.hooks = sorted(built, key=lambda h: get_priority(h.priority))
        self.runner = runner

    def bind(self, runner: Any) -> 'HookList':
        self.runner = runner
        return self

    def call(self, stage: str, *args, **kwargs) -> None:
        if stage not in Hook.stages:
            raise ValueError(f"unknown hook stage '{stage}'; stages: {Hook.stages}")
        for h in self.hooks:
            fn = getattr(h, stage, None)
            if fn is not None:
                fn(self.runner, *args, **kwargs)

    def add(self, hook) -> None:
        self.hooks = sorted(self.hooks + [hook], key=lambda h: get_priority(h.priority))

    def __iter__(self):
        return iter(self.hooks)

    def __len__(self) -> int:
        return len(self.hooks)
