"""Suites on miniature fake layouts with a tiny model: the cross-dataset and base-to-novel tables in the papers'
layouts next to the published numbers; the published data file is internally consistent."""
import json
import re
import textwrap

import pytest

from promptsync.experiments.suite_tables import harmonic_mean, published

from ..datasets.coop_fakes import build
from .helpers import ROOT, load_tool

TINY = {'model.backbone.model_name': 'ps-tiny-vit', 'model.backbone.pretrained': None,
        'model.backbone.precision': 'fp32', 'data.num_workers': 0, 'data.batch_size': 4, 'default_hooks.progress.disable': True,
        'device': 'cpu'}


def test_published_numbers_reproduce_the_papers_averages():
    data = published()
    for key in ('dg_vit_b16', 'cross_dataset_vit_b16'):
        table = data[key]
        cols = [table['columns'].index(c) for c in table['average']['columns']]
        for name, row in table['rows'].items():
            vals = [row['values'][i] for i in cols]
            if 'printed_average' in row and None not in vals:
                assert sum(vals) / len(vals) == pytest.approx(row['printed_average'], abs=0.02), (key, name)
    for name, row in data['base_to_novel_vit_b16']['rows'].items():
        base, novel = sum(row['base']) / 11, sum(row['novel']) / 11
        assert [round(base, 2), round(novel, 2)] == row['average'][:2], name
        assert harmonic_mean(base, novel) == pytest.approx(row['average'][2], abs=0.01), name


@pytest.fixture
def fake_root(tmp_path, monkeypatch):
    root = tmp_path / 'data'
    for key in ('oxford_pets', 'dtd', 'eurosat'):
        build(root, key)
    monkeypatch.setenv('PROMPTSYNC_DATA', str(root))
    return root


def suite_file(tmp_path, base: str, body: str):
    path = tmp_path / 'suite.py'
    path.write_text(f"_base_ = ['{ROOT / 'configs/suites' / base}']\n" + textwrap.dedent(body))
    return path


def test_cross_dataset_table_on_fake_layouts(tmp_path, fake_root, capsys):
    cfg = suite_file(tmp_path, 'cross_dataset_vit_b16.py', f"""
        suite = dict(
            datasets=dict(_delete_=True, **{{k: v for k, v in _base_.suite.datasets.items()
                                            if k in ('oxford_pets', 'dtd', 'eurosat')}}),
            averages=dict(_delete_=True, avg=['oxford_pets', 'dtd', 'eurosat']),
            methods=dict(tpt=dict(cfg_options={{'tta.views.n_views': 8}})),
            cfg_options={TINY!r}, prepare=[])
    """)
    tool = load_tool('benchmark')
    assert tool.main([str(cfg), '--methods', 'zeroshot,tpt', '--work-dir', str(tmp_path / 'out')]) == 0
    printed = capsys.readouterr().out
    assert 'PromptAlign (paper)' in printed and '90.76' in printed  # its published Pets number
    assert '94.01' not in printed  # its Caltech number: not a column of this suite
    zs_row = next(line for line in printed.splitlines() if line.startswith('zeroshot')).split()[1:]
    assert len(zs_row) == 4 and all(re.fullmatch(r'\d+\.\d\d', v) for v in zs_row), zs_row  # 0 prints as 0.00
    out = json.loads((tmp_path / 'out' / 'benchmark.json').read_text())
    for method in ('zeroshot', 'tpt'):
        row = out['table'][method]
        means = [row[k]['mean'] for k in ('oxford_pets', 'dtd', 'eurosat')]
        assert row['avg']['mean'] == pytest.approx(sum(means) / 3)
    zs_cfg = (tmp_path / 'out' / 'cells' / 'zeroshot' / 'dtd' / 'seed0' / 'config.py').read_text()
    assert "templates='dtd'" in zs_cfg and "type='DTD'" in zs_cfg
    metrics = json.loads((tmp_path / 'out' / 'cells' / 'tpt' / 'eurosat' / 'seed0' / 'metrics.json').read_text())
    assert metrics['num_samples'] == 10  # one fake image per EuroSAT class


def test_base_to_novel_table_on_fake_layouts(tmp_path, fake_root, capsys):
    cfg = suite_file(tmp_path, 'base_to_novel_vit_b16.py', f"""
        suite = dict(
            datasets=dict(_delete_=True, **{{k: v for k, v in _base_.suite.datasets.items()
                                            if k.split('/')[0] in ('oxford_pets', 'eurosat')}}),
            cfg_options={TINY!r})
    """)
    tool = load_tool('benchmark')
    assert tool.main([str(cfg), '--methods', 'zeroshot', '--work-dir', str(tmp_path / 'out')]) == 0
    printed = capsys.readouterr().out
    assert 'oxford_pets HM' in printed and 'MaPLe (paper)' in printed
    out = json.loads((tmp_path / 'out' / 'benchmark.json').read_text())
    row = out['table']['zeroshot']
    base = [row[f'{d}/base']['mean'] for d in ('oxford_pets', 'eurosat')]
    novel = [row[f'{d}/new']['mean'] for d in ('oxford_pets', 'eurosat')]
    hm = harmonic_mean(sum(base) / 2, sum(novel) / 2)
    row_text = next(line for line in printed.splitlines() if line.startswith('zeroshot'))
    assert row_text.split()[-1] == f'{hm:.2f}'  # HM of the average base and average novel accuracy
    pets_new = json.loads((tmp_path / 'out' / 'cells' / 'zeroshot' / 'oxford_pets_new' / 'seed1' /
                           'metrics.json').read_text())
    assert pets_new['num_samples'] == 18  # 37 classes: base 19, new 18, one fake image each
    # the extra ECE table: base and novel per dataset, no harmonic mean of calibration errors
    ece = (tmp_path / 'out' / 'benchmark.md').read_text().split('## ece')[1]
    cells = [c.strip() for c in next(ln for ln in ece.splitlines() if ln.startswith('| zeroshot')).split('|')[2:-1]]
    ece_row = out['tables']['ece']['zeroshot']
    assert cells[:2] == [f"{ece_row[f'oxford_pets/{part}']['mean']:.2f}" for part in ('base', 'new')]
    assert cells[2::3] == ['-'] * 3  # pets HM, eurosat HM, HM of the averages
