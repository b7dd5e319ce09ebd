"""tools/ablate.py end to end on the tiny model: grid, outputs, reuse/resume, seeds, errors, user losses."""
import csv
import json
import math
import textwrap
from pathlib import Path

import pytest
from mmengine.config import Config

import promptsync.experiments.ablate as ablate
import promptsync.experiments.runs as runs
from promptsync.evaluation import read_records
from promptsync.engine.provenance import fingerprint
from promptsync.utils.config import load_config

from .helpers import ROOT, load_tool, options

TPT = str(ROOT / 'configs/tpt/vit_b16_imagenet_r.py')


@pytest.fixture(scope='module')
def tool():
    return load_tool('ablate')


@pytest.fixture
def small(tiny_overrides):
    return dict(tiny_overrides, **{'tta.views.n_views': 8, 'tta.selection.ratio': 0.25})


def run(tool, config, work_dir, overrides, *extra):
    return tool.main([config, '--work-dir', str(work_dir), *extra, *options(overrides), 'default_hooks.progress.disable=True'])


def load(work_dir):
    return json.loads((work_dir / 'ablation.json').read_text())


def cell_file(work_dir, run_dir, name):
    return work_dir / 'cells' / run_dir / name


def test_two_by_two_grid_end_to_end_then_reuse_and_resume(tool, tmp_path, small, capsys, monkeypatch):
    rc = run(tool, TPT, tmp_path, small, '--grid', 'tta.steps=0,2', '--grid', 'tta.optimizer.lr=1e-3,5e-2')
    out = capsys.readouterr().out
    assert rc == 0
    state = load(tmp_path)
    names = [c['name'] for c in state['cells']]
    assert names == ['tta.steps=0__tta.optimizer.lr=0.001', 'tta.steps=0__tta.optimizer.lr=0.05',
                     'tta.steps=2__tta.optimizer.lr=0.001', 'tta.steps=2__tta.optimizer.lr=0.05']
    assert sorted(p.name for p in (tmp_path / 'cells').iterdir()) == sorted(f'{n}__seed=0' for n in names)
    measured = ['top1', 'top5', 'mean_class_top1', 'ece', 'ece_excluded', 'pred_entropy', 'pred_max_share',
                'label_entropy', 'label_max_share']  # the default metrics of every run
    header = ['tta.steps', 'tta.optimizer.lr', *[x for m in measured for x in (m, f'{m}_std')], 'ms/img', 'n',
              'status', 'error']
    with open(tmp_path / 'ablation.csv') as f:
        table = list(csv.DictReader(f))
    assert list(table[0]) == header and len(table) == 4
    lines = out.splitlines()
    at = lines.index(next(line for line in lines if line.startswith('tta.steps ')))
    assert lines[at].split() == ['tta.steps', 'tta.optimizer.lr', *measured, 'ms/img', 'n', 'status']
    assert [line.split()[:2] for line in lines[at + 2:at + 6]] == [['0', '0.001'], ['0', '0.05'], ['2', '0.001'],
                                                                 ['2', '0.05']]
    assert '| tta.steps' in (tmp_path / 'ablation.md').read_text()
    confidences = {}
    for cell, row in zip(state['cells'], table):
        run_dir = cell['runs'][0]['dir']
        own = json.loads(cell_file(tmp_path, run_dir, 'metrics.json').read_text())
        assert {k: v['mean'] for k, v in cell['metrics'].items()} == own['metrics']
        assert float(row['top1']) == pytest.approx(own['metrics']['top1']) and row['n'] == '1'
        assert cell['runs'][0]['status'] == 'ran' and cell['status'] == 'ok'
        dumped = Config.fromfile(str(cell_file(tmp_path, run_dir, 'config.py')))
        assert dumped.tta.steps == cell['overrides']['tta.steps'] == int(row['tta.steps'])
        assert dumped.tta.optimizer.lr == cell['overrides']['tta.optimizer.lr'] == float(row['tta.optimizer.lr'])
        assert 'ablation' not in dumped and dumped.work_dir == str(tmp_path / 'cells' / run_dir)
        records = read_records(cell_file(tmp_path, run_dir, 'predictions.jsonl'))
        confidences[cell['name']] = [r['confidence'] for r in sorted(records, key=lambda r: r['index'])]
    # the swept values act: without steps the lr cannot matter, with two steps it does
    assert confidences[names[0]] == confidences[names[1]] and confidences[names[2]] != confidences[names[3]]
    assert confidences[names[0]] != confidences[names[2]]

    # a re-run reuses every run: run_test is not called and nothing is rewritten
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / 'cells').glob('*/metrics.json')}
    monkeypatch.setattr(runs, 'run_test', lambda *a, **k: pytest.fail('run_test called for a complete run'))
    assert run(tool, TPT, tmp_path, small, '--grid', 'tta.steps=0,2', 'tta.optimizer.lr=1e-3,5e-2') == 0
    again = load(tmp_path)
    assert [c['status'] for c in again['cells']] == ['reused'] * 4 and again['counts']['reused'] == 4
    assert [c['metrics'] for c in again['cells']] == [c['metrics'] for c in state['cells']]
    assert mtimes == {p: p.stat().st_mtime_ns for p in (tmp_path / 'cells').glob('*/metrics.json')}
    monkeypatch.undo()

    # an interrupted run (no completion marker, torn predictions) resumes; the others are reused
    run_dir = state['cells'][3]['runs'][0]['dir']
    cell_file(tmp_path, run_dir, ablate.MARKER).unlink()
    preds = cell_file(tmp_path, run_dir, 'predictions.jsonl')
    preds.write_text('\n'.join(preds.read_text().splitlines()[:5]) + '\n')
    assert run(tool, TPT, tmp_path, small, '--grid', 'tta.steps=0,2', 'tta.optimizer.lr=1e-3,5e-2') == 0
    resumed = load(tmp_path)
    assert [c['status'] for c in resumed['cells']] == ['reused'] * 3 + ['ok']
    assert resumed['cells'][3]['runs'][0]['num_new'] == 7
    assert resumed['cells'][3]['metrics'] == state['cells'][3]['metrics']


def test_grid_in_config_with_cli_override_and_seed(tool, tmp_path, small):
    cfg = tmp_path / 'grid_cfg.py'
    cfg.write_text(textwrap.dedent(f"""
        _base_ = [{TPT!r}]
        ablation = dict(grid={{'tta.steps': [0, 1, 2], 'tta.optimizer.lr': [0.01]}}, seeds=[3])
    """))
    assert run(tool, str(cfg), tmp_path / 'out', small, '--grid', 'tta.steps=0,1') == 0
    state = load(tmp_path / 'out')
    assert state['grid'] == {'tta.steps': [0, 1], 'tta.optimizer.lr': [0.01]} and state['seeds'] == [3]
    dirs = [c['runs'][0]['dir'] for c in state['cells']]
    assert dirs == ['tta.steps=0__tta.optimizer.lr=0.01__seed=3', 'tta.steps=1__tta.optimizer.lr=0.01__seed=3']
    for steps, d in zip((0, 1), dirs):
        dumped = Config.fromfile(str(cell_file(tmp_path / 'out', d, 'config.py')))
        assert (dumped.seed, dumped.tta.steps, dumped.tta.optimizer.lr) == (3, steps, 0.01)
        assert json.loads(cell_file(tmp_path / 'out', d, 'run.json').read_text())['seed'] == 3


def test_seeds_mean_and_sample_std(tool, tmp_path, small, capsys):
    assert run(tool, TPT, tmp_path, small, '--grid', 'tta.steps=1', '--seeds', '0,1,2') == 0
    out = capsys.readouterr().out
    (cell,) = load(tmp_path)['cells']
    assert [r['seed'] for r in cell['runs']] == [0, 1, 2] and cell['n'] == 3
    per_seed = [json.loads(cell_file(tmp_path, r['dir'], 'metrics.json').read_text()) for r in cell['runs']]
    assert [m['seed'] for m in per_seed] == [0, 1, 2]
    for name in ('top1', 'top5'):
        values = [m['metrics'][name] for m in per_seed]
        mean = sum(values) / 3
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / 2)
        assert cell['metrics'][name]['mean'] == pytest.approx(mean)
        assert cell['metrics'][name]['std'] == pytest.approx(std)
        assert f'{mean:.2f} ± {std:.2f}' in out
    runs_info = [json.loads(cell_file(tmp_path, r['dir'], 'run.json').read_text()) for r in cell['runs']]
    ms = [m['timing']['tta_ms_per_sample'] for m in runs_info]  # timing is in run.json (metrics.json is exact)
    assert cell['ms_per_img'] == pytest.approx(sum(ms) / 3)


def test_unknown_keys_are_refused_with_close_matches(tool, tmp_path, small, capsys):
    assert run(tool, TPT, tmp_path / 'w', small, '--grid', 'tta.optimiser.lr=1e-3,5e-3') == 2
    err = capsys.readouterr().err
    assert "unknown config key 'tta.optimiser.lr'" in err and "no key 'optimiser'" in err
    assert 'Did you mean: tta.optimizer.lr' in err and not (tmp_path / 'w').exists()
    cfg = load_config(TPT)
    with pytest.raises(ablate.AblationError, match='Pass --allow-new-keys'):
        ablate.resolve_spec(cfg, {'tta.optimizer.momentum': [0.9]})
    assert ablate.resolve_spec(cfg, {'tta.optimizer.momentum': [0.9]}, allow_new_keys=True)[0]
    with pytest.raises(ablate.AblationError, match='parent dict exists'):
        ablate.resolve_spec(cfg, {'tta.optimiser.lr': [1.0]}, allow_new_keys=True)
    with pytest.raises(ablate.AblationError, match=r"'tta.losses' is a list of 1 items"):
        ablate.resolve_spec(cfg, {'tta.losses.1.weight': [1.0]})
    with pytest.raises(ablate.AblationError, match='overlap'):
        ablate.resolve_spec(cfg, {'tta.optimizer': [dict(type='SGD', lr=0.1)], 'tta.optimizer.lr': [1.0]})
    with pytest.raises(ablate.AblationError, match='nothing to ablate'):
        ablate.resolve_spec(cfg)


def test_grid_values_and_cell_names():
    key, values = ablate.parse_grid_arg('data.shard=1,2.5e-3,True,None,abc,[0,2],(1,5)')
    assert key == 'data.shard' and values == [1, 0.0025, True, None, 'abc', [0, 2], (1, 5)]
    with pytest.raises(ablate.AblationError, match='KEY=V1,V2'):
        ablate.parse_grid_arg('tta.steps')
    cells = ablate.expand_grid({'a.b': [1, 2], 'root': ['/x/y', [1, 5]]})
    assert [c['name'] for c in cells] == ['a.b=1__root=_x_y', 'a.b=1__root=1,5', 'a.b=2__root=_x_y',
                                          'a.b=2__root=1,5']
    assert cells[1]['overrides'] == {'a.b': 1, 'root': [1, 5]}
    twins = ablate.expand_grid({'k': ['a/b', 'a_b']})
    assert len({c['name'] for c in twins}) == 2


def test_failing_cell_is_recorded_and_the_grid_goes_on(tool, tmp_path, small, capsys):
    assert run(tool, TPT, tmp_path, small, '--grid', 'tta.steps=-1,1') == 1
    captured = capsys.readouterr()
    assert 'FAILED tta.steps=-1__seed=0: ValueError: steps must be >= 0, got -1' in captured.err
    bad, good = load(tmp_path)['cells']
    assert bad['status'] == 'failed' and bad['n'] == 0 and 'steps must be >= 0' in bad['runs'][0]['error']
    assert 'ValueError' in cell_file(tmp_path, bad['runs'][0]['dir'], 'error.txt').read_text()
    own = json.loads(cell_file(tmp_path, good['runs'][0]['dir'], 'metrics.json').read_text())
    assert good['status'] == 'ok' and {k: v['mean'] for k, v in good['metrics'].items()} == own['metrics']
    assert 'steps must be >= 0' in (tmp_path / 'ablation.md').read_text()
    # a re-run retries the failed cell only
    assert run(tool, TPT, tmp_path, small, '--grid', 'tta.steps=-1,1') == 1
    assert load(tmp_path)['counts'] == dict(ran=0, reused=1, failed=1, pending=0)


def test_interrupt_keeps_finished_runs(tmp_path, small, monkeypatch):
    calls = []

    def fake_run_test(cfg, resume=True, print_table=True):
        calls.append(cfg.tta.steps)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return dict(metrics=dict(top1=50.0), timing=dict(tta_ms_per_sample=1.0), num_samples=12, num_new=12)

    monkeypatch.setattr(runs, 'run_test', fake_run_test)
    cfg = load_config(TPT, small)
    with pytest.raises(KeyboardInterrupt):
        ablate.run_ablation(cfg, {'tta.steps': [0, 1, 2]}, work_dir=tmp_path)
    state = load(tmp_path)
    assert [c['status'] for c in state['cells']] == ['ok', 'pending', 'pending'] and calls == [0, 1]
    assert state['cells'][0]['metrics']['top1']['mean'] == 50.0


def test_reuse_needs_the_same_fingerprint_and_sample_selection(tmp_path, small, monkeypatch):
    calls = []

    def fake_run_test(cfg, resume=True, print_table=True):  # writes what the runner writes
        calls.append(cfg.work_dir)
        result = dict(metrics=dict(top1=float(len(calls))), timing=dict(tta_ms_per_sample=1.0), num_samples=12)
        Path(cfg.work_dir, 'run.json').write_text(json.dumps(dict(fingerprint=fingerprint(cfg))))
        Path(cfg.work_dir, 'metrics.json').write_text(json.dumps(result))
        return result

    monkeypatch.setattr(runs, 'run_test', fake_run_test)
    grid = {'tta.steps': [0, 1]}
    statuses = []
    for extra in ({}, {}, {'data.max_samples': 6}, {'data.max_samples': 6}, {'tta.optimizer.weight_decay': 0.0},
                  {'data.batch_size': 4, 'tta.optimizer.weight_decay': 0.0}):
        state = ablate.run_ablation(load_config(TPT, dict(small, **extra)), grid, work_dir=tmp_path)
        statuses.append(state['counts']['reused'])
    assert statuses == [0, 2, 0, 2, 0, 2] and len(calls) == 6
    assert [c['metrics']['top1']['mean'] for c in load(tmp_path)['cells']] == [5.0, 6.0]  # the numbers reused
    ablate.run_ablation(load_config(TPT, small), grid, work_dir=tmp_path, resume=False)
    assert len(calls) == 8


def test_sweeping_the_weight_of_a_user_registered_loss(tool, tmp_path, small, monkeypatch):
    (tmp_path / 'my_ablation_losses.py').write_text(textwrap.dedent("""
        from promptsync.losses import TTALoss
        from promptsync.registry import LOSSES

        @LOSSES.register_module(force=True)
        class AblationProbeLoss(TTALoss):
            def forward(self, ctx):
                return -ctx.selected_logits[:, 0].mean()  # pushes every view towards class 0
    """))
    cfg = tmp_path / 'user_cfg.py'
    cfg.write_text(textwrap.dedent(f"""
        _base_ = [{TPT!r}]
        custom_imports = dict(imports=['my_ablation_losses'], allow_failed_imports=False)
        tta = dict(losses=[dict(type='MarginalEntropyLoss', weight=1.0), dict(type='AblationProbeLoss', weight=1.0)],
                   optimizer=dict(lr=0.1))
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    assert run(tool, str(cfg), tmp_path / 'out', small, '--grid', 'tta.losses.1.weight=0,0.5') == 0
    cells = load(tmp_path / 'out')['cells']
    assert [c['status'] for c in cells] == ['ok', 'ok']
    preds = []
    for cell, weight in zip(cells, (0, 0.5)):
        d = cell['runs'][0]['dir']
        dumped = Config.fromfile(str(cell_file(tmp_path / 'out', d, 'config.py')))
        assert dumped.tta.losses[1] == dict(type='AblationProbeLoss', weight=weight)
        records = sorted(read_records(cell_file(tmp_path / 'out', d, 'predictions.jsonl')), key=lambda r: r['index'])
        assert all('AblationProbeLoss' in r['loss'] for r in records)
        preds.append([r['confidence'] for r in records])
    assert preds[0] != preds[1]  # the user loss's weight reached the adaptation
