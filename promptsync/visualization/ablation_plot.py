"""Ablation grids as figures: a heat map for two swept keys, lines with error bars for one (or three and more).

Input: the state :func:`promptsync.experiments.ablate.run_ablation` returns (what ablation.json holds). Cells are
placed by their values of the grid keys (in the grid's order). One panel per metric: the ablation's metric and, when
the runs measured it, the ECE. Shapes:

* 0 keys (seeds only): one point; 1 key: a line over its values;
* 2 keys: a heat map, rows = the first key, columns = the second, each cell annotated ``mean ± std``;
* 3+ keys: lines over the first key, one line per combination of the others.

Error bars / ``± std`` are the sample std over seeds, only where a cell has more than one completed seed; a cell
without a result (failed, pending) is a gap in a line and ``n/a`` (grey) in a heat map. A numeric key is drawn on a
numeric axis (log-scaled when its positive values span two decades or more), any other on evenly spaced ticks.
"""
from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .figure import PlotInputError, metric_title, metrics_of_interest, new_figure, save_png

LOG_SPAN = 100.0  # max / min of a positive numeric key from which its axis is logarithmic


@dataclass
class AblationPanel:
    """The numbers of one panel; arrays are [rows, columns] (rows: heat-map rows or lines; columns: x values)."""
    metric: str
    kind: str                 # 'heatmap' or 'lines'
    x_key: str | None         # None: no swept key (seeds only)
    x_values: list[Any]
    x_labels: list[str]
    row_key: str | None       # the heat map's row key, or the keys that tell the lines apart (joined by ', ')
    row_labels: list[str]
    mean: np.ndarray          # NaN: no result
    std: np.ndarray           # NaN: fewer than two seeds

    @property
    def numeric_x(self) -> bool:
        return self.kind == 'lines' and bool(self.x_values) and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in self.x_values)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=repr)  # as ablation.json stores it


def _positions(state: dict) -> tuple[list[str], list[tuple[int, ...]]]:
    grid = state.get('grid') or {}
    keys = list(grid)
    index = {k: [_canonical(v) for v in values] for k, values in grid.items()}
    where = []
    for cell in state['cells']:
        overrides = cell.get('overrides') or {}
        try:
            where.append(tuple(index[k].index(_canonical(overrides[k])) for k in keys))
        except (KeyError, ValueError):
            raise PlotInputError(f"cell '{cell.get('name')}' sets {overrides}, which is not a point of the grid "
                                 f'{grid}', where='ablation.json',
                                 fix='plot the ablation.json the grid wrote') from None
    return keys, where


def ablation_panels(state: dict, metrics: Sequence[str] | None = None) -> list[AblationPanel]:
    """The panels' numbers: the ablation's metric and the secondary ones measured (or exactly ``metrics``)."""
    from promptsync.experiments.ablate_report import display, metric_names  # here: that module calls this one

    for key in ('cells', 'metric'):
        if key not in state:
            raise PlotInputError(f"an ablation state has no '{key}'", where='ablation.json',
                                 fix='pass what run_ablation returns / ablation.json holds')
    keys, where = _positions(state)
    grid = state.get('grid') or {}
    heatmap = len(keys) == 2
    x_key = (keys[1] if heatmap else keys[0]) if keys else None
    x_values = list(grid[x_key]) if x_key else [None]
    row_keys = keys[:1] if heatmap else keys[1:]
    row_combos = list(itertools.product(*(range(len(grid[k])) for k in row_keys)))
    row_labels = [', '.join(f'{k}={display(grid[k][i])}' if not heatmap else display(grid[k][i])
                            for k, i in zip(row_keys, combo)) for combo in row_combos]
    x_pos = 1 if heatmap else 0
    panels = []
    for metric in metrics_of_interest(state['metric'], metric_names(state['cells']), metrics):
        mean = np.full((len(row_combos), len(x_values)), np.nan)
        std = np.full_like(mean, np.nan)
        for cell, pos in zip(state['cells'], where):
            entry = (cell.get('metrics') or {}).get(metric)
            if entry is None or entry.get('mean') is None:
                continue
            col = pos[x_pos] if keys else 0
            row = row_combos.index(tuple(p for i, p in enumerate(pos) if i != x_pos))
            mean[row, col] = entry['mean']
            if entry.get('std') is not None and len(entry.get('values') or []) > 1:
                std[row, col] = entry['std']
        panels.append(AblationPanel(metric, 'heatmap' if heatmap else 'lines', x_key, x_values,
                                    [display(v) for v in x_values] if x_key else ['(base)'],
                                    ', '.join(row_keys) or None, row_labels, mean, std))
    return panels


def _draw_heatmap(figure, ax, panel: AblationPanel) -> None:
    import matplotlib  # the colour maps (matplotlib is imported only when a figure is drawn)

    values = np.ma.masked_invalid(panel.mean)
    cmap = matplotlib.colormaps['viridis'].with_extremes(bad='#dddddd')
    image = ax.imshow(values, cmap=cmap, aspect='auto')
    figure.colorbar(image, ax=ax, label=panel.metric, shrink=0.9)
    norm = image.norm
    for r, c in itertools.product(range(panel.mean.shape[0]), range(panel.mean.shape[1])):
        value, spread = panel.mean[r, c], panel.std[r, c]
        if np.isnan(value):
            ax.text(c, r, 'n/a', ha='center', va='center', fontsize=8, color='black')
            continue
        red, green, blue, _ = cmap(norm(value))
        ink = 'black' if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else 'white'
        text = f'{value:.2f}' + ('' if np.isnan(spread) else f'\n± {spread:.2f}')
        ax.text(c, r, text, ha='center', va='center', fontsize=8, color=ink)
    ax.set_xticks(range(len(panel.x_labels)), panel.x_labels, rotation=30 if len(panel.x_labels) > 5 else 0)
    ax.set_yticks(range(len(panel.row_labels)), panel.row_labels)
    ax.set(xlabel=panel.x_key, ylabel=panel.row_key)


def _draw_lines(ax, panel: AblationPanel) -> None:
    x = np.array(panel.x_values, dtype=float) if panel.numeric_x else np.arange(len(panel.x_labels), dtype=float)
    for r, label in enumerate(panel.row_labels):
        colour = f'C{r % 10}'
        ax.plot(x, panel.mean[r], marker='o', color=colour, label=label or panel.metric)
        spread = ~np.isnan(panel.std[r]) & ~np.isnan(panel.mean[r])
        if spread.any():
            ax.errorbar(x[spread], panel.mean[r][spread], yerr=panel.std[r][spread], fmt='none', ecolor=colour,
                        capsize=3, label='_std over seeds')
    if panel.numeric_x:
        positive = x[x > 0]
        if len(positive) == len(x) and positive.max() / positive.min() >= LOG_SPAN:
            ax.set_xscale('log')
        ax.set_xticks(x, panel.x_labels)
        ax.minorticks_off()
    else:
        ax.set_xticks(x, panel.x_labels, rotation=30 if len(panel.x_labels) > 5 else 0)
        ax.set_xlim(x.min() - 0.5, x.max() + 0.5)
    ax.set(xlabel=panel.x_key or '', ylabel=panel.metric)
    ax.grid(alpha=0.3)
    if len(panel.row_labels) > 1:
        ax.legend(fontsize=7)  # each label names its keys


def ablation_figure(state: dict, metrics: Sequence[str] | None = None):
    """``(figure, panels)``: the grid's figure and the numbers it shows."""
    panels = ablation_panels(state, metrics)
    first = panels[0]
    if first.kind == 'heatmap':
        width, height = 1.3 * len(first.x_labels) + 3.0, 0.7 * len(first.row_labels) + 2.2
    else:
        width, height = max(4.5, 0.8 * len(first.x_labels) + 2.5), 3.8
    figure = new_figure(width * len(panels), height + 0.5)
    axes = figure.subplots(1, len(panels), squeeze=False)[0]
    seeds = state.get('seeds') or []
    for ax, panel in zip(axes, panels):
        _draw_heatmap(figure, ax, panel) if panel.kind == 'heatmap' else _draw_lines(ax, panel)
        spread = 'mean ± sample std over seeds' if (~np.isnan(panel.std)).any() else 'one seed per cell'
        ax.set_title(f'{metric_title(panel.metric)}; {spread}', fontsize=9)
    seed_text = f"seeds {', '.join(map(str, seeds))}" if seeds and seeds != [None] else 'seed per cell'
    figure.suptitle(f"Ablation of {Path(str(state.get('config', 'config'))).name} ({seed_text})", fontsize=10)
    return figure, panels


def ablation_plot(state: dict, *, path: str | Path, metrics: Sequence[str] | None = None) -> Path:
    """Write the grid's figure to ``path`` (ablation.png next to ablation.md)."""
    return save_png(ablation_figure(state, metrics)[0], path)
