"""Suite bars: the heights are the seed means of the table, error bars the std over seeds (only with >1 seed), a
panel per metric; write_suite writes benchmark.png and links it, and a failing plot never loses the table."""
import copy
import json
import math
import statistics
import sys

import numpy as np
import pytest

import promptsync.experiments.suites as suites
from promptsync.experiments.suites import build_table, write_suite
from promptsync.visualization.figure import PlotInputError
from promptsync.visualization.suite_bars import suite_figure, suite_panels

from .helpers import assert_png, bars, error_bars


def _ran(seed, **metrics):
    return dict(status='ran', metrics=metrics, seed=seed, dir=f'cells/x/seed{seed}', num_skipped=0)


def suite_out(two_seeds=True):
    cells = {
        'a': {'d1': [_ran(0, top1=40.0, ece=10.0), _ran(1, top1=50.0, ece=14.0)],
              'd2': [_ran(0, top1=60.0, ece=20.0), _ran(1, top1=80.0, ece=30.0)]},
        'b': {'d1': [_ran(0, top1=30.0, ece=5.0)],
              'd2': [dict(status='failed', metrics=None, seed=0, dir='cells/b/d2/seed0', error='boom')]},
    }
    if not two_seeds:
        cells['a'] = {d: rs[:1] for d, rs in cells['a'].items()}
    averages = {'avg': ['d1', 'd2']}
    return dict(name='hand', metric='top1', datasets=['d1', 'd2'], averages=averages, layout='plain',
                reference=None, methods={'a': dict(config='a.py', seeds=[0, 1] if two_seeds else [0]),
                                         'b': dict(config='b.py', seeds=[0])},
                prepared=[], table=build_table(cells, ['d1', 'd2'], averages, 'top1'), cells=cells, wall_s=0.0,
                failed=['cells/b/d2/seed0'])


def test_panels_hold_the_hand_computed_summaries():
    top1, ece = suite_panels(suite_out())
    assert (top1.metric, ece.metric) == ('top1', 'ece')
    assert top1.methods == ['a', 'b'] and top1.columns == ['d1', 'd2', 'avg']
    # a: means over seeds; the average is per seed first: (40+60)/2=50, (50+80)/2=65
    assert top1.mean[0] == pytest.approx([45, 70, 57.5])
    assert top1.std[0] == pytest.approx([statistics.stdev([40, 50]), statistics.stdev([60, 80]),
                                         statistics.stdev([50, 65])])
    assert top1.mean[1][0] == 30 and np.isnan(top1.mean[1][1:]).all() and np.isnan(top1.std[1]).all()
    assert ece.mean[0] == pytest.approx([12, 25, 18.5]) and ece.std[0][2] == pytest.approx(statistics.stdev([15, 22]))
    assert ece.mean[1][0] == 5 and top1.n.tolist() == [[2, 2, 2], [1, 0, 0]]
    assert [p.metric for p in suite_panels(suite_out(), metrics=['ece'])] == ['ece']
    with pytest.raises(PlotInputError, match='top5'):
        suite_panels(suite_out(), metrics=['top5'])


def _segments(container):
    """(x, low, high) of each error bar."""
    out = []
    for segment in container.lines[2][0].get_segments():
        (x0, y0), (_, y1) = segment
        out.append((round(float(x0), 6), float(y0), float(y1)))
    return out


def test_the_figure_draws_the_bars_and_error_bars_only_with_several_seeds():
    figure, panels = suite_figure(suite_out())
    top1_ax, ece_ax = figure.axes[:2]
    a, b = bars(top1_ax, 'a'), bars(top1_ax, 'b')
    assert [p.get_height() for p in a] == pytest.approx([45, 70, 57.5])
    assert [p.get_height() for p in b] == [30]  # the failed cell and the incomplete average have no bar
    assert a[0].get_x() < b[0].get_x() < a[1].get_x()  # grouped by column, methods side by side
    assert [p.get_height() for p in bars(ece_ax, 'a')] == pytest.approx([12, 25, 18.5])
    (spread,) = error_bars(top1_ax)  # method a only: b has one seed
    centres = [round(p.get_x() + p.get_width() / 2, 6) for p in a]
    expected = zip(centres, [45, 70, 57.5], panels[0].std[0])
    want = [(x, m - s, m + s) for x, m, s in expected]
    assert np.allclose(_segments(spread), want)
    assert 'n/a' in [t.get_text() for t in top1_ax.texts]
    assert 'sample std over seeds' in top1_ax.get_title()

    one_seed, _ = suite_figure(suite_out(two_seeds=False))
    assert not any(error_bars(ax) for ax in one_seed.axes)
    assert 'one seed' in one_seed.axes[0].get_title()


def test_write_suite_writes_and_links_the_figure(tmp_path):
    out = suite_out()
    write_suite(out, tmp_path)
    assert_png(tmp_path / 'benchmark.png')
    md = (tmp_path / 'benchmark.md').read_text()
    assert '![top1 per method and dataset](benchmark.png)' in md and '| a ' in md
    assert json.loads((tmp_path / 'benchmark.json').read_text())['table'] == json.loads(json.dumps(out['table']))


def _broken(*args, **kwargs):
    raise RuntimeError('the plot broke')


@pytest.mark.parametrize('failure', ['draw raises', 'no matplotlib'])
def test_a_failing_plot_is_a_warning_and_the_table_is_written(tmp_path, monkeypatch, warnings_logged, failure):
    (tmp_path / 'benchmark.png').write_bytes(b'an older figure')
    if failure == 'draw raises':
        monkeypatch.setattr(suites, 'suite_bars', _broken)
        reason = 'the plot broke'
    else:
        monkeypatch.setitem(sys.modules, 'matplotlib.figure', None)  # import matplotlib.figure -> ImportError
        reason = 'the figures need matplotlib'
    text = write_suite(copy.deepcopy(suite_out()), tmp_path)
    assert 'a' in text and (tmp_path / 'benchmark.json').is_file()
    md = (tmp_path / 'benchmark.md').read_text()
    assert '| a ' in md and 'benchmark.png' not in md
    assert not (tmp_path / 'benchmark.png').exists()  # the stale figure is not left beside the new table
    messages = [r.getMessage() for r in warnings_logged]
    assert any(reason in m and 'benchmark.png' in m for m in messages), messages


def test_an_average_column_of_a_method_with_a_missing_seed_is_not_drawn():
    out = suite_out()
    del out['cells']['a']['d2'][1]  # seed 1 lacks d2: its average cannot be taken
    out['table'] = build_table(out['cells'], out['datasets'], out['averages'], 'top1')
    top1 = suite_panels(out)[0]
    assert top1.mean[0][:2] == pytest.approx([45, 60]) and top1.n[0].tolist() == [2, 1, 1]
    assert top1.mean[0][2] == 50 and math.isnan(top1.std[0][1])
