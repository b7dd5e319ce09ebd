"""The analysis figures, one run per panel or per bar group: prompt-change norms (text vs vision branch), flips, and
the cross-modal consistency. Drawn on :func:`promptsync.visualization.figure.new_figure` (an Agg canvas, no pyplot).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from promptsync.visualization.figure import PlotInputError, new_figure, save_png

from .summary import values

BRANCH_COLORS = {'text': 'tab:blue', 'vision': 'tab:orange'}
FLIP_KINDS = (('wrong_to_right', 'wrong -> right', 'tab:green'), ('right_to_wrong', 'right -> wrong', 'tab:red'),
              ('wrong_to_wrong', 'wrong -> other wrong', 'tab:gray'))


def _panels(n: int, width: float = 4.0, height: float = 3.0):
    if n < 1:
        raise PlotInputError('no run to draw', where='runs')
    figure = new_figure(width * n, height)
    axes = figure.subplots(1, n, squeeze=False)[0]
    return figure, axes


def prompt_change_histograms(runs, path: Path) -> Path:
    """Per run: histograms of ``prompt_change.<branch>`` for every branch (log-spaced bins: the branches' tensors
    differ in scale), zero changes counted in the title."""
    figure, axes = _panels(len(runs))
    for ax, run in zip(axes, runs):
        branches = [b for b in run.meta.get('branches') or {}] or ['all']
        series = {b: np.asarray([x for x in values(run.records, f'prompt_change.{b}') if x is not None])
                  for b in branches}
        positive = np.concatenate([s[s > 0] for s in series.values()]) if series else np.zeros(0)
        zeros = {b: int((s == 0).sum()) for b, s in series.items()}
        if positive.size:
            lo, hi = positive.min(), positive.max()
            edges = np.geomspace(lo / 1.05, hi * 1.05, 25)
            for b, s in series.items():
                ax.hist(s[s > 0], bins=edges, histtype='step', linewidth=1.5, label=f'{b} (n={int((s > 0).sum())})',
                        color=BRANCH_COLORS.get(b))
            ax.set_xscale('log')
            ax.xaxis.set_minor_formatter('')  # the minor labels of a narrow log range overlap
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, 'no prompt changed', ha='center', va='center', transform=ax.transAxes)
        unchanged = ', '.join(f'{b}: {z}' for b, z in zeros.items() if z)
        ax.set_title(run.name + (f'\nunchanged {unchanged}' if unchanged else ''), fontsize=9)
        ax.set_xlabel('|theta_a - theta_0| per sample')
        ax.set_ylabel('samples')
    return save_png(figure, path)


def flip_bars(summaries: list[dict], path: Path) -> Path:
    """Grouped bars per run: wrong -> right, right -> wrong, wrong -> other wrong (percent of the samples)."""
    if not summaries:
        raise PlotInputError('no run to draw', where='runs')
    figure = new_figure(max(4.0, 1.6 * len(summaries) + 2), 3.2)
    ax = figure.subplots()
    x = np.arange(len(summaries))
    width = 0.8 / len(FLIP_KINDS)
    top = 0.0
    for k, (key, label, color) in enumerate(FLIP_KINDS):
        share = [100.0 * s['flips'][key] / s['flips']['n'] for s in summaries]
        bars = ax.bar(x + (k - 1) * width, share, width, label=label, color=color)
        ax.bar_label(bars, labels=[str(s['flips'][key]) for s in summaries], fontsize=7)
        top = max([top, *share])
    ax.set_xticks(x, [s['name'] for s in summaries], fontsize=8)
    ax.set_ylim(0, 1.35 * top if top > 0 else 1.0)  # room for the legend above the bars
    ax.set_ylabel('% of samples (bar label: count)')
    ax.set_title('prediction flips: initial -> adapted prompts', fontsize=9)
    ax.legend(fontsize=8, ncols=len(FLIP_KINDS), loc='upper center')
    return save_png(figure, path)


def consistency_histograms(runs, path: Path) -> Path:
    """Per run: histograms of the two consistency cosines in [-1, 1] (samples with no shift are counted, not drawn)."""
    figure, axes = _panels(len(runs))
    edges = np.linspace(-1, 1, 21)
    for ax, run in zip(axes, runs):
        measured = [r for r in run.records if not r.get('failed')]
        drawn = False
        for key, color in (('pred', 'tab:purple'), ('mean', 'tab:olive')):
            xs = [x for x in values(measured, f'consistency.{key}') if x is not None]
            if xs:
                ax.hist(xs, bins=edges, histtype='step', linewidth=1.5, color=color,
                        label=f'{key} class (n={len(xs)}, undefined {len(measured) - len(xs)})')
                drawn = True
        if drawn:
            ax.legend(fontsize=7)
        else:
            ax.text(0.5, 0.5, 'undefined: no image shift\n(text-only prompts) or no change', ha='center', va='center',
                    transform=ax.transAxes, fontsize=8)
        ax.axvline(0.0, color='black', linewidth=0.5)
        ax.set_xlim(-1, 1)
        ax.set_title(run.name, fontsize=9)
        ax.set_xlabel('cos(text shift, image shift)')
        ax.set_ylabel('samples')
    return save_png(figure, path)
