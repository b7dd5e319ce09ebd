"""``analysis.md`` (+ ``analysis.json`` and the PNGs) comparing the adaptation of one or several runs side by side.

The tables hold the numbers of :func:`~.summary.summarize`; a figure that cannot be drawn is a warning and a line
in the markdown (``plot_safely``), never a lost table.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from tabulate import tabulate

from promptsync.visualization.safe import plot_safely

from .plots import consistency_histograms, flip_bars, prompt_change_histograms
from .reading import RunRecording
from .summary import summarize

FIGURES = (('prompt_change.png', 'prompt-change norms per sample, text vs vision branch'),
           ('flips.png', 'prediction flips'), ('consistency.png', 'cross-modal consistency per sample'))


def _num(x: Any) -> str:
    if x is None:
        return '-'
    if isinstance(x, int):
        return str(x)
    return f'{x:.4g}'


def _dist(d: dict | None) -> str:
    if d is None:
        return '-'
    return f"{_num(d['mean'])} ± {_num(d['std'])} (median {_num(d['median'])}, n={d['n']})"


def _rows(summaries: list[dict]) -> dict[str, list[list[str]]]:
    """Table rows per section, one column per run."""
    def row(label, fn):
        return [label] + [fn(s) for s in summaries]
    branches = list(dict.fromkeys(b for s in summaries for b in s['branches']))
    predictions = [
        row('samples', lambda s: _num(s['flips']['n'])),
        row('top-1 with the initial prompts (%)', lambda s: f"{s['flips']['top1_initial']:.2f}"),
        row('top-1 adapted (%)', lambda s: f"{s['flips']['top1']:.2f}"),
        row('top-1 probability, initial prompts', lambda s: _dist(s['confidence']['initial'])),
        row('top-1 probability, adapted', lambda s: _dist(s['confidence']['adapted'])),
        row('predictions changed', lambda s: _num(s['flips']['changed'])),
        row('wrong -> right', lambda s: _num(s['flips']['wrong_to_right'])),
        row('right -> wrong', lambda s: _num(s['flips']['right_to_wrong'])),
        row('wrong -> other wrong', lambda s: _num(s['flips']['wrong_to_wrong'])),
        row('failed (non-finite, counted wrong)', lambda s: _num(s['flips']['failed']))]
    prompts = []
    for b in branches:
        prompts.append(row(f'‖θ_a − θ_0‖, {b}', lambda s, b=b: _dist(s['prompt_change'].get(b))))
        prompts.append(row(f'  ÷ ‖θ_0‖, {b}', lambda s, b=b: _dist(s['relative_prompt_change'].get(b))))
    prompts.append(row('‖θ_0‖ per branch',
                       lambda s: ', '.join(f'{k} {_num(v)}' for k, v in s['initial_norm'].items())))

    def cons(key):
        def fn(s):
            d = s['consistency'][key]
            if d is None:
                return 'undefined (no image or no text shift)'
            return f"{_dist(d)}; > 0: {100 * d['positive']:.0f}%; undefined {d['undefined']}"
        return fn

    def var(key):
        def fn(s):
            v = s['text_variance']
            if v is None:
                return '-'
            out = _num(v[key])
            return out if v['covers_all'] else f"{out} (over {v['samples']} samples)"
        return fn
    geometry = [
        row('image shift ‖f_a − f_0‖ (view 0)', lambda s: _dist(s['image_shift'])),
        row('text shift, rms over classes', lambda s: _dist(s['text_shift']['rms'])),
        row('text shift common to all classes', lambda s: _dist(s['text_shift']['mean'])),
        row('text shift of the predicted class', lambda s: _dist(s['text_shift']['pred'])),
        row('consistency cos(text shift of predicted class, image shift)', cons('pred')),
        row('consistency cos(mean text shift, image shift)', cons('mean')),
        row('class spread of the text features, initial', lambda s: _num(s['text_spread']['initial'])),
        row('class spread of the text features, adapted', lambda s: _dist(s['text_spread']['adapted'])),
        row('across-sample variance V of the adapted text embeddings', var('variance')),
        row('mean squared text shift MS', var('mean_sq_shift')),
        row('V / MS (share of the shift that varies between samples)', var('varying_share'))]
    return dict(predictions=predictions, prompts=prompts, geometry=geometry)


def write_report(runs: Sequence[RunRecording], out_dir: str | Path) -> Path:
    """Write ``analysis.md``, ``analysis.json`` and the figures into ``out_dir``; returns the markdown's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summaries = [summarize(r) for r in runs]
    drawn = {
        'prompt_change.png': plot_safely(prompt_change_histograms, list(runs), path=out_dir / 'prompt_change.png'),
        'flips.png': plot_safely(flip_bars, summaries, path=out_dir / 'flips.png'),
        'consistency.png': plot_safely(consistency_histograms, list(runs), path=out_dir / 'consistency.png')}
    headers = [''] + [s['name'] for s in summaries]
    rows = _rows(summaries)

    def figure(name):
        caption = dict(FIGURES)[name]
        return f'![{caption}]({name})' if drawn[name] else f'({caption}: the figure could not be drawn, see the log)'
    runs_table = tabulate([[s['name'], s['path'], s['method'], s['prompt_learner'], s['steps'], s['classes']]
                           for s in summaries], headers=['run', 'dir', 'method', 'prompts', 'steps', 'classes'],
                          tablefmt='github')
    parts = ['# Adaptation analysis', '', runs_table, '',
             '## Predictions: initial prompts -> adapted prompts', '',
             tabulate(rows['predictions'], headers=headers, tablefmt='github'), '', figure('flips.png'), '',
             '## Prompt change (mean ± std over samples)', '',
             tabulate(rows['prompts'], headers=headers, tablefmt='github'), '', figure('prompt_change.png'), '',
             '## Feature shifts and cross-modal consistency', '',
             tabulate(rows['geometry'], headers=headers, tablefmt='github'), '', figure('consistency.png'), '',
             'Definitions: docs/analysis.md (f: image feature of the original view, t_c: text feature of class c, '
             '_0 initial / _a adapted prompts; features are unit vectors).']
    notes = [(s['name'], n) for s in summaries for n in s['notes']]
    if notes:
        parts += ['', '## Notes', ''] + [f'- {name}: {note}' for name, note in notes]
    md = out_dir / 'analysis.md'
    md.write_text('\n'.join(parts) + '\n')
    (out_dir / 'analysis.json').write_text(json.dumps(summaries, indent=2) + '\n')
    return md
