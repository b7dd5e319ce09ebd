"""Grouped bars of a suite result: one group per dataset/domain column (then the averages), one bar per method.

Input: the ``out`` dict of :func:`promptsync.experiments.suites.run_suite` (what benchmark.json holds). The bars are
the seed means the table prints, error bars the sample std over seeds, drawn only for cells with more than one
seed. One panel per metric: the suite's metric (from ``out['table']``, the table's own numbers) and, when the cells
measured it, the ECE (summarised from ``out['cells']`` exactly as the table is: averages per seed, then over seeds).
A column without a result (failed or missing cell) has no bar and is marked ``n/a``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from .figure import PlotInputError, metric_title, metrics_of_interest, new_figure, save_png

ANNOTATE_AT_MOST = 40  # bars; more and the value labels overlap


@dataclass
class SuitePanel:
    """The numbers of one panel; arrays are [methods, columns]."""
    metric: str
    methods: list[str]
    columns: list[str]
    mean: np.ndarray   # NaN: no result
    std: np.ndarray    # NaN: one seed (no error bar)
    n: np.ndarray      # seeds summarised


def _measured(out: dict) -> list[str]:
    names = [out['metric']] if out.get('table') else []
    for cells in out.get('cells', {}).values():
        for records in cells.values():
            for record in records:
                names += list(record.get('metrics') or {})
    return list(dict.fromkeys(names))


def suite_panels(out: dict, metrics: Sequence[str] | None = None) -> list[SuitePanel]:
    """The panels' numbers: the suite's metric and the secondary ones measured (or exactly ``metrics``)."""
    from promptsync.experiments.suites import build_table  # here: suites.py imports this module's caller

    for key in ('metric', 'datasets', 'table', 'cells'):
        if key not in out:
            raise PlotInputError(f"a suite result has no '{key}'", where='benchmark.json',
                                 fix='pass what run_suite returns / benchmark.json writes')
    columns = list(out['datasets']) + list(out.get('averages') or {})
    methods = list(out['table'])
    if not methods:
        raise PlotInputError('the suite result has no methods', where='benchmark.json')
    panels = []
    for metric in metrics_of_interest(out['metric'], _measured(out), metrics):
        table = out['table'] if metric == out['metric'] else build_table(
            out['cells'], out['datasets'], out.get('averages') or {}, metric)
        shape = (len(methods), len(columns))
        mean, std, n = np.full(shape, np.nan), np.full(shape, np.nan), np.zeros(shape, dtype=int)
        for i, method in enumerate(methods):
            for j, column in enumerate(columns):
                entry = (table.get(method) or {}).get(column) or {}
                if entry.get('mean') is None:
                    continue
                mean[i, j], n[i, j] = entry['mean'], entry.get('n', 1)
                if n[i, j] > 1:
                    std[i, j] = entry['std']
        panels.append(SuitePanel(metric, methods, columns, mean, std, n))
    return panels


def _draw_panel(ax, panel: SuitePanel, n_datasets: int, legend: bool) -> None:
    n_methods, n_columns = panel.mean.shape
    width = 0.8 / n_methods
    groups = np.arange(n_columns)
    annotate = panel.mean.size <= ANNOTATE_AT_MOST
    for i, method in enumerate(panel.methods):
        x = groups - 0.4 + width * (i + 0.5)
        has = ~np.isnan(panel.mean[i])
        ax.bar(x[has], panel.mean[i][has], width, label=method, color=f'C{i % 10}', edgecolor='black',
               linewidth=0.5)
        spread = has & ~np.isnan(panel.std[i])
        if spread.any():
            ax.errorbar(x[spread], panel.mean[i][spread], yerr=panel.std[i][spread], fmt='none', ecolor='black',
                        elinewidth=1, capsize=3, label='_std over seeds')
        for xi, value, present in zip(x, panel.mean[i], has):
            if not present:
                ax.text(xi, 0, 'n/a', ha='center', va='bottom', fontsize=7, rotation=90, color='grey')
            elif annotate:
                ax.annotate(f'{value:.1f}', (xi, value), xytext=(0, 2), textcoords='offset points', ha='center',
                            va='bottom', fontsize=7, rotation=90 if n_methods > 3 else 0)
    if n_columns > n_datasets:  # the averages, set apart
        ax.axvline(n_datasets - 0.5, color='grey', linestyle=':', linewidth=1)
    seeds = 'mean ± sample std over seeds' if (panel.n > 1).any() else 'one seed'
    ax.set_title(f'{metric_title(panel.metric)}; {seeds}', fontsize=10)
    ax.set_ylabel(panel.metric)
    ax.set_xticks(groups, panel.columns, rotation=30 if n_columns > 6 else 0, ha='right' if n_columns > 6 else 'center')
    ax.margins(y=0.15)
    ax.grid(axis='y', alpha=0.3)
    if legend:
        ax.legend(fontsize=8, ncols=min(n_methods, 4), loc='lower left', bbox_to_anchor=(0, 1.08))


def suite_figure(out: dict, metrics: Sequence[str] | None = None):
    """``(figure, panels)``: the grouped bars and the numbers they show."""
    panels = suite_panels(out, metrics)
    n_columns = len(panels[0].columns)
    figure = new_figure(max(6.0, 0.35 * n_columns * (len(panels[0].methods) + 1)), 3.2 * len(panels) + 0.6)
    axes = figure.subplots(len(panels), 1, squeeze=False)[:, 0]
    for k, (ax, panel) in enumerate(zip(axes, panels)):
        _draw_panel(ax, panel, len(out['datasets']), legend=k == 0)
    figure.suptitle(out.get('name', 'suite'), fontsize=11)
    return figure, panels


def suite_bars(out: dict, *, path: str | Path, metrics: Sequence[str] | None = None) -> Path:
    """Write the suite's grouped bars to ``path`` (benchmark.png next to benchmark.md)."""
    return save_png(suite_figure(out, metrics)[0], path)
