"""Which engine an :class:`EpisodicTTA` run uses, and why (recorded in ``metrics.json`` under ``engine``).

``mode='fast'`` takes the fast engine unless a hook could change what the selection or the losses see
(a hook that overrides a TTA stage and does not declare ``batch_safe = True``); several samples are adapted at
once only where that is exact: an episodic reset, an element-wise optimizer, batch-safe losses and hooks, and
under an fp16 grad scaler one step of one phase (see :mod:`.prompt_sources`). ``batch_size='auto'`` adapts each
loaded batch (``data.batch_size``) at once where exact, else one sample at a time, and says why; an explicit
``batch_size > 1`` that cannot be exact is an error.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from promptsync.errors import ConfigError
from promptsync.hooks.base import TTA_STAGES, Hook

from .prompt_sources import ELEMENTWISE_OPTIMIZERS


@dataclass
class EnginePlan:
    mode: str                       # 'fast' | 'reference'
    group: int                      # samples adapted at once
    reasons: list[str] = field(default_factory=list)  # why the plan is less than asked for


def unsafe_hooks(hooks) -> list[str]:
    """Hooks that override a TTA stage without declaring ``batch_safe``."""
    out = []
    for h in hooks:
        if getattr(h, 'batch_safe', False) or not isinstance(h, Hook):
            continue
        if any(getattr(type(h), s) is not getattr(Hook, s) for s in TTA_STAGES):
            out.append(type(h).__name__)
    return out


def batch_blockers(method) -> list[str]:
    """Why samples of this run cannot be adapted together exactly (empty: they can)."""
    reasons = []
    if type(method.reset_policy).__name__ != 'EpisodicReset':
        reasons.append(f'reset policy {type(method.reset_policy).__name__} carries prompts from one sample to the '
                       'next')
    opt = type(method.optimizer).__name__
    if opt not in ELEMENTWISE_OPTIMIZERS:
        reasons.append(f'optimizer {opt} is not known to update each element on its own '
                       f'(known: {sorted(ELEMENTWISE_OPTIMIZERS)})')
    if method.scaler.is_enabled() and (method.steps > 1 or len(method.phases) > 1):
        reasons.append('fp16 autocast with a grad scaler: a sample that overflows skips its step and goes on with a '
                       'smaller scale, which copies reproduce for one step of one phase only (use amp_bf16 or fp32)')
    if not method.loss.batch_safe:
        reasons.append(f'losses {method.loss.unsafe_terms()} do not declare batch_safe')
    hooks = unsafe_hooks(method.hooks)
    if hooks:
        reasons.append(f'hooks {hooks} do not declare batch_safe')
    return reasons


def plan_engine(method, loaded: int) -> EnginePlan:
    """The engine for a loaded batch of ``loaded`` samples."""
    if method.mode == 'reference':
        return EnginePlan('reference', 1)
    hooks = unsafe_hooks(method.hooks)
    if hooks:
        return EnginePlan('reference', 1, [f'hooks {hooks} override TTA stages and do not declare batch_safe = True; '
                                           'the reference loop runs (declare it when the hook only reads the context)'])
    want = loaded if method.batch_size == 'auto' else min(int(method.batch_size), loaded)
    if want <= 1:
        return EnginePlan('fast', 1)
    blockers = batch_blockers(method)
    if not blockers:
        return EnginePlan('fast', want)
    if method.batch_size != 'auto':
        refuse_batch_size(method.batch_size, blockers)
    return EnginePlan('fast', 1, blockers)


def refuse_batch_size(batch_size: int, blockers: list[str]) -> None:
    """An explicit ``tta.batch_size > 1`` that cannot be exact is an error, not a quiet fallback."""
    raise ConfigError(f'tta.batch_size={batch_size} cannot adapt samples together exactly: ' + '; '.join(blockers),
                      where='tta.batch_size',
                      fix="use tta.batch_size='auto' (one sample at a time where batching is not exact) or 1")
