"""The report's numbers: pure functions of the recorded lines (and the text-shift sums) of one run.

Failed samples (non-finite adapted logits) count as wrong, as in the metrics, and have no shift numbers; a
consistency cosine is undefined where a shift is shorter than the recording's ``min_shift``.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from .reading import RunRecording


def flips(records: list[dict]) -> dict[str, Any]:
    """How the adaptation changed the predictions: ``changed`` (another class), ``wrong_to_right``,
    ``right_to_wrong``, ``wrong_to_wrong`` (a wrong class for another wrong class), ``failed``; top-1 with the
    initial and the adapted prompts (percent), so that ``top1 - top1_initial = 100 (wrong_to_right -
    right_to_wrong) / n``."""
    n = len(records)
    if not n:
        raise ValueError('no recorded samples')
    before = [bool(r['correct_initial']) for r in records]
    after = [bool(r['correct']) for r in records]
    changed = [r['pred'] != r['pred_initial'] for r in records]
    return dict(n=n, changed=sum(changed),
                wrong_to_right=sum(not b and a for b, a in zip(before, after)),
                right_to_wrong=sum(b and not a for b, a in zip(before, after)),
                wrong_to_wrong=sum(not b and not a and c for b, a, c in zip(before, after, changed)),
                failed=sum(bool(r.get('failed')) for r in records),
                top1_initial=100.0 * sum(before) / n, top1=100.0 * sum(after) / n)


def values(records: Iterable[dict], dotted: str) -> list[float | None]:
    """The field ``dotted`` (``'prompt_change.text'``) of every line (``None`` where absent or null)."""
    out = []
    for r in records:
        node: Any = r
        for part in dotted.split('.'):
            node = node.get(part) if isinstance(node, dict) else None
        out.append(None if node is None else float(node))
    return out


def distribution(xs: Iterable[float | None]) -> dict[str, float] | None:
    """``n, mean, std`` (population), ``median, p10, p90`` and ``positive`` (share > 0) of the defined values, and
    ``undefined`` (how many were ``None``); ``None`` when no value is defined."""
    xs = list(xs)
    defined = np.asarray([x for x in xs if x is not None], dtype=np.float64)
    if not defined.size:
        return None
    p10, median, p90 = np.quantile(defined, [0.1, 0.5, 0.9])
    return dict(n=int(defined.size), undefined=len(xs) - int(defined.size), mean=float(defined.mean()),
                std=float(defined.std()), median=float(median), p10=float(p10), p90=float(p90),
                positive=float((defined > 0).mean()))


def summarize(run: RunRecording) -> dict[str, Any]:
    """Every number of the report for one run."""
    recs, meta = run.records, run.meta
    branches = list(meta.get('branches') or {}) + ['all']
    initial_norm = meta.get('initial_norm') or {}
    measured = [r for r in recs if not r.get('failed')]
    relative = {}
    for b in branches:
        scale = initial_norm.get(b)
        if scale:  # the change as a fraction of the tensors' initial norm
            relative[b] = distribution(None if x is None else x / scale for x in values(measured, f'prompt_change.{b}'))
    variance = run.sums.variance() if run.sums is not None else None
    if variance is not None:
        ms = variance['mean_sq_shift']
        variance.update(varying_share=variance['variance'] / ms if ms > 0 else None, covers_all=run.sums_cover_all)
    return dict(
        name=run.name, path=str(run.path), method=meta.get('method'), prompt_learner=meta.get('prompt_learner'),
        steps=meta.get('steps'), classes=meta.get('classes'), branches=branches, flips=flips(recs),
        confidence=dict(initial=distribution(values(recs, 'confidence_initial')),
                        adapted=distribution(values(recs, 'confidence'))),
        prompt_change={b: distribution(values(measured, f'prompt_change.{b}')) for b in branches},
        relative_prompt_change=relative, initial_norm=initial_norm,
        image_shift=distribution(values(measured, 'image_shift')),
        text_shift={k: distribution(values(measured, f'text_shift.{k}')) for k in ('rms', 'mean', 'pred')},
        consistency={k: distribution(values(measured, f'consistency.{k}')) for k in ('pred', 'mean')},
        text_spread=dict(initial=meta.get('initial_text_spread'),
                         adapted=distribution(values(measured, 'text_spread'))),
        text_variance=variance, min_shift=meta.get('min_shift'), notes=list(run.notes))
