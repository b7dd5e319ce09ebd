"""Ablation figures: a heat map of two swept keys and lines (with error bars only for >1 seed) otherwise, holding
the cells' seed means; write_outputs draws ablation.png at the end and links it, and a failing plot loses nothing."""
import itertools
import json
import statistics

import numpy as np
import pytest

import promptsync.experiments.ablate_report as report
from promptsync.experiments.ablate import expand_grid
from promptsync.experiments.ablate_report import summarize_cell, write_outputs
from promptsync.visualization.ablation_plot import ablation_figure, ablation_panels
from promptsync.visualization.figure import PlotInputError

from .helpers import assert_png, error_bars


def score(overrides, seed):
    """top1 of a run: a different number for every (cell, seed); ece = 100 - top1."""
    return 10.0 * len(json.dumps(overrides, sort_keys=True)) % 37 + 3.0 * seed + sum(
        float(v) if isinstance(v, (int, float)) else 1.0 for v in overrides.values())


def make_state(grid, seeds=(0, 1), fail=()):
    """An ablation state as run_ablation builds it; runs of the cells named in ``fail`` (cell index, seed) fail."""
    cells = expand_grid(grid)
    for i, cell in enumerate(cells):
        cell['runs'] = []
        for seed in seeds:
            top1 = score(cell['overrides'], seed)
            ok = (i, seed) not in fail
            cell['runs'].append(dict(seed=seed, dir=f"{cell['name']}__seed={seed}", status='ran' if ok else 'failed',
                                     metrics=dict(top1=top1, ece=100 - top1) if ok else {},
                                     error=None if ok else 'boom', ms_per_img=1.0, wall_s=0.1))
        summarize_cell(cell)
    return dict(config='configs/shapes/tpt.py', grid=grid, seeds=list(seeds), metric='top1', cells=cells)


def hand(state, overrides, metric='top1'):
    """(mean, std or NaN) of the runs of the cell with these overrides, computed from its runs."""
    cell = next(c for c in state['cells'] if c['overrides'] == overrides)
    values = [r['metrics'][metric] for r in cell['runs'] if r['status'] == 'ran']
    if not values:
        return np.nan, np.nan
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else np.nan


GRID_2D = {'tta.steps': [0, 2], 'tta.optimizer.lr': [0.001, 0.01, 0.1]}


@pytest.mark.parametrize('round_trip', [False, True])
def test_two_keys_make_a_heat_map_of_the_seed_means(round_trip):
    state = make_state(GRID_2D, fail=[(1, 0), (1, 1), (5, 1)])  # cell 1 failed entirely, cell 5 has one seed
    if round_trip:  # as read back from ablation.json
        state = json.loads(json.dumps(state, default=repr))
    figure, panels = ablation_figure(state)
    assert [p.metric for p in panels] == ['top1', 'ece'] and panels[0].kind == 'heatmap'
    top1 = panels[0]
    assert top1.row_key == 'tta.steps' and top1.x_key == 'tta.optimizer.lr'
    assert top1.row_labels == ['0', '2'] and top1.x_labels == ['0.001', '0.01', '0.1']
    for r, c in itertools.product(range(2), range(3)):
        point = {'tta.steps': GRID_2D['tta.steps'][r], 'tta.optimizer.lr': GRID_2D['tta.optimizer.lr'][c]}
        mean, std = hand(state, point)
        np.testing.assert_allclose([top1.mean[r, c], top1.std[r, c]], [mean, std])
    assert np.isnan(top1.mean[0, 1]) and not np.isnan(top1.mean[1, 2]) and np.isnan(top1.std[1, 2])
    np.testing.assert_allclose(panels[1].mean, 100 - top1.mean)
    ax = figure.axes[0]
    shown = ax.images[0].get_array()
    assert shown.mask[0, 1] and shown.mask.sum() == 1  # the failed cell is masked (grey), the rest drawn
    np.testing.assert_allclose(shown.filled(np.nan), top1.mean)
    texts = [t.get_text() for t in ax.texts]
    assert texts[1] == 'n/a' and texts[0] == f'{top1.mean[0, 0]:.2f}\n± {top1.std[0, 0]:.2f}'
    assert texts[5] == f'{top1.mean[1, 2]:.2f}'  # one seed: no ± std
    assert [t.get_text() for t in ax.get_xticklabels()] == ['0.001', '0.01', '0.1']


def _line_ys(ax):
    return [np.asarray(line.get_ydata(), dtype=float) for line in ax.lines if not line.get_label().startswith('_')]


def test_one_numeric_key_makes_a_line_with_error_bars_only_for_several_seeds():
    grid = {'tta.optimizer.lr': [1e-4, 1e-3, 1e-2]}
    state = make_state(grid, fail=[(2, 1)])
    figure, panels = ablation_figure(state)
    ax = figure.axes[0]
    expected = [hand(state, {'tta.optimizer.lr': v}) for v in grid['tta.optimizer.lr']]
    (ys,) = _line_ys(ax)
    np.testing.assert_allclose(ys, [m for m, _ in expected])
    assert ax.get_xscale() == 'log' and list(ax.lines[0].get_xdata()) == grid['tta.optimizer.lr']
    (bars,) = error_bars(ax)
    segments = bars.lines[2][0].get_segments()
    assert len(segments) == 2  # the third cell has one completed seed: no error bar
    for seg, (mean, std) in zip(segments, expected[:2]):
        np.testing.assert_allclose([seg[0][1], seg[1][1]], [mean - std, mean + std])

    single = make_state(grid, seeds=(0,))
    assert not any(error_bars(a) for a in ablation_figure(single)[0].axes)


def test_three_keys_make_one_line_per_combination_of_the_others_and_values_may_be_anything():
    grid = {'tta.steps': [1, 2, 3], 'tta.selection.ratio': [0.1, 0.2], 'tta.losses': [[dict(type='A')], 'B']}
    state = make_state(grid)
    figure, (top1, _) = ablation_figure(state)
    assert top1.kind == 'lines' and top1.x_key == 'tta.steps' and len(top1.row_labels) == 4
    assert top1.row_labels[1] == 'tta.selection.ratio=0.1, tta.losses=B'
    ys = _line_ys(figure.axes[0])
    for r, (ratio, losses) in enumerate(itertools.product(*list(grid.values())[1:])):
        want = [hand(state, {'tta.steps': s, 'tta.selection.ratio': ratio, 'tta.losses': losses})[0] for s in (1, 2, 3)]
        np.testing.assert_allclose(ys[r], want)
    categorical = make_state({'tta.losses': [[dict(type='A')], 'B']})
    _, (panel, _) = ablation_figure(categorical)
    assert panel.x_labels == ["[{'type': 'A'}]", 'B'] and not panel.numeric_x
    seeds_only = make_state({}, seeds=(0, 1, 2))
    _, (panel, _) = ablation_figure(seeds_only)
    assert panel.x_labels == ['(base)'] and panel.mean[0, 0] == pytest.approx(hand(seeds_only, {})[0])


def test_write_outputs_draws_the_figure_at_the_end_and_links_it(tmp_path, capsys):
    state = make_state(GRID_2D)
    write_outputs(state, tmp_path)  # after a run: tables only
    assert not (tmp_path / 'ablation.png').exists() and 'ablation.png' not in (tmp_path / 'ablation.md').read_text()
    write_outputs(state, tmp_path, final=True)
    assert_png(tmp_path / 'ablation.png')
    assert '![top1 over the grid](ablation.png)' in (tmp_path / 'ablation.md').read_text()
    assert f"figure {tmp_path / 'ablation.png'}" in capsys.readouterr().out


def test_a_failing_plot_keeps_the_tables(tmp_path, monkeypatch, warnings_logged):
    (tmp_path / 'ablation.png').write_bytes(b'an older figure')

    def broken(*args, **kwargs):
        raise ValueError('cannot draw this grid')
    monkeypatch.setattr(report, 'ablation_plot', broken)
    table = write_outputs(make_state(GRID_2D), tmp_path, final=True)
    assert 'tta.steps' in table and (tmp_path / 'ablation.csv').is_file() and (tmp_path / 'ablation.json').is_file()
    md = (tmp_path / 'ablation.md').read_text()
    assert 'tta.steps' in md and 'ablation.png' not in md and not (tmp_path / 'ablation.png').exists()
    assert any('cannot draw this grid' in r.getMessage() for r in warnings_logged)


def test_a_cell_off_the_grid_or_a_metric_nobody_measured_is_refused():
    state = make_state(GRID_2D)
    state['cells'][0]['overrides']['tta.steps'] = 7
    with pytest.raises(PlotInputError, match='not a point of the grid'):
        ablation_panels(state)
    with pytest.raises(PlotInputError, match="choose among top1, ece"):
        ablation_panels(make_state(GRID_2D), metrics=['top5'])
    nothing = make_state(GRID_2D, fail=list(itertools.product(range(6), (0, 1))))
    with pytest.raises(PlotInputError, match="no run measured the metric 'top1'"):
        ablation_panels(nothing)
