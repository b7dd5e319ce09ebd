"""Suites: the smoke suite end to end on the shipped tiny CLIP (the CI version of `make demo`), the table maths,
reuse of finished cells and of prepared prototypes."""
import json
import statistics

import pytest

import promptsync.experiments.runs as runs
from promptsync.experiments.suites import SuiteError, build_table, run_suite
from promptsync.utils.config import load_config

from .helpers import ROOT, load_tool

SMOKE = ROOT / 'configs/suites/shapes_smoke.py'


def test_build_table_averages_per_seed_then_summarises():
    cells = {'m': {'a': [dict(seed=0, metrics=dict(top1=10.0)), dict(seed=1, metrics=dict(top1=20.0))],
                   'b': [dict(seed=0, metrics=dict(top1=30.0)), dict(seed=1, metrics=None)]}}
    table = build_table(cells, ['a', 'b'], {'avg': ['a', 'b']}, 'top1')
    assert table['m']['a']['mean'] == 15.0 and table['m']['a']['std'] == pytest.approx(statistics.stdev([10, 20]))
    assert table['m']['b']['n'] == 1
    assert table['m']['avg']['values'] == [20.0]  # seed 1 has no value for 'b': no average for it


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv('PROMPTSYNC_DATA', str(tmp_path / 'data'))
    monkeypatch.setenv('PROMPTSYNC_CKPT', str(tmp_path / 'ckpt'))
    return tmp_path


def test_smoke_suite_end_to_end_then_reuse(env, capsys, monkeypatch):
    tool = load_tool('benchmark')
    assert tool.main([str(SMOKE), '--work-dir', str(env / 'out')]) == 0
    printed = capsys.readouterr().out
    for word in ('zeroshot', 'tpt', 'promptalign', 'promptsync', 'sketch', 'cartoon', 'corrupted', 'target_avg'):
        assert word in printed
    out = json.loads((env / 'out' / 'benchmark.json').read_text())
    assert not out['failed'] and out['prepared'][0]['step'] == 'prototypes'
    for method, row in out['table'].items():
        targets = [row[d]['mean'] for d in ('sketch', 'cartoon', 'corrupted')]
        assert row['target_avg']['mean'] == pytest.approx(sum(targets) / 3), method
        for domain in ('photo', 'sketch'):
            cell = out['cells'][method][domain][0]
            metrics = json.loads((env / 'out' / 'cells' / method / domain / 'seed0' / 'metrics.json').read_text())
            assert metrics['num_samples'] == 40 and metrics['metrics']['top1'] == cell['metrics']['top1']
            for name in ('mean_class_top1', 'ece', 'pred_max_share'):  # the extra tables of the demo suite
                assert out['tables'][name][method][domain]['mean'] == metrics['metrics'][name]
    text = (env / 'out' / 'benchmark.md').read_text()
    assert '## ece: expected calibration error' in text and '## pred_max_share' in text
    # a re-run reuses every cell and the prototypes
    monkeypatch.setattr(runs, 'run_test', lambda *a, **k: pytest.fail('a finished cell ran again'))
    import promptsync.experiments.suites as suites
    monkeypatch.setattr(suites, 'compute_prototypes', lambda *a, **k: pytest.fail('prototypes recomputed'))
    drawn = []
    monkeypatch.setattr(suites, 'plot_safely', lambda *a, **k: drawn.append(k.get('path')))
    assert tool.main([str(SMOKE), '--work-dir', str(env / 'out')]) == 0
    assert drawn == [env / 'out' / 'benchmark.png']  # the suite files are written (and the figure drawn) once


def test_suite_errors(env):
    cfg = load_config(SMOKE, {'suite.averages': {'avg': ['sketch', 'nope']}})
    with pytest.raises(SuiteError, match='unknown datasets'):
        run_suite(cfg, env / 'x', root=ROOT)
    with pytest.raises(SuiteError, match='suite.tables'):
        run_suite(load_config(SMOKE, {'suite.tables': ['top1']}), env / 'x', root=ROOT)
    with pytest.raises(SuiteError, match='unknown methods'):
        run_suite(load_config(SMOKE), env / 'x', methods=['tpt', 'tent'], root=ROOT)
