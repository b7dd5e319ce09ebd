"""Base-to-novel suites end to end on the shipped tiny CLIP: prompts trained per (learner, group, seed) on the base
classes, the cells pointed at them, banks computed with them, reuse, and failures confined to the cells that need
them."""
import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

import promptsync.experiments.runs as runs
import promptsync.experiments.suite_training as suite_training
from promptsync.engine import run_test
from promptsync.engine.loops.prototype_loop import bank_fingerprint
from promptsync.engine.provenance import fingerprint
from promptsync.experiments.suites import SuiteError, run_suite
from promptsync.utils.config import load_config

from .helpers import ROOT

SUITE = ROOT / 'configs/suites/shapes_base_to_novel.py'
#: tiny sizes: 2 test images per class, 8 views, 2 epochs on 2 shots, 2 proxy images per class
SMALL = {'suite.seeds': [1, 2], 'suite.methods': dict(_delete_=True,
    zeroshot=dict(config='configs/shapes/zeroshot.py', seeds=[1]),
    coop=dict(config='configs/shapes/b2n/coop.py', prompts='coop'),
    maple_tpt=dict(config='configs/shapes/maple_tpt.py', prompts='maple', seeds=[1]),
    promptsync=dict(config='configs/shapes/promptsync.py', prompts='maple', prototypes=True, seeds=[1],
                    cfg_options={'proxy_data.dataset.subsample': 'base', 'proxy_data.dataset.per_class': 2,
                                 'tta.views.n_views': 8})),
    'suite.cfg_options': {'data.dataset.per_class': 2, 'default_hooks.progress.disable': True},
    'suite.train.cfg_options': {'trainer.epochs': 2, 'train_data.num_shots': 2, 'val_data.max_samples': 10,
                                'default_hooks.progress.disable': True}}


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv('PROMPTSYNC_DATA', str(tmp_path / 'data'))
    monkeypatch.setenv('PROMPTSYNC_CKPT', str(tmp_path / 'ckpt'))
    return tmp_path


def _cell_cfg(out: Path, method: str, ds: str, seed: int) -> dict:
    return load_config(out / 'cells' / method / ds.replace('/', '_') / f'seed{seed}' / 'config.py').to_dict()


def test_trains_on_base_classes_then_tests_base_and_new(env, monkeypatch):
    out = env / 'out'
    result = run_suite(load_config(SUITE, SMALL), out, root=ROOT)
    assert not result['failed'], result['failed']
    train = [r for r in result['prepared'] if r['step'] == 'train']
    # one training per (learner, group, seed): coop on seeds 1 and 2, maple on seed 1 (its methods' seeds)
    assert sorted((r['learner'], r['seed']) for r in train) == [('coop', 1), ('coop', 2), ('maple', 1)]
    for r in train:
        run_dir = Path(r['dir'])
        shots = json.loads((run_dir / 'fewshot_indices.json').read_text())
        assert shots['num_classes'] == 10 and shots['seed'] == r['seed']  # the 10 base classes, the cell's seed
        assert set(shots['labels']) == set(range(10))
        assert all(p.split('/')[0] in ('circle', 'square', 'triangle', 'star', 'hexagon', 'pentagon', 'diamond',
                                       'cross', 'heart', 'crescent') for p in shots['paths'])
    # each cell uses the prompts trained with its own seed (different seeds: different prompts)
    ckpts = {s: _cell_cfg(out, 'coop', 'photo/new', s)['model']['prompt_checkpoint'] for s in (1, 2)}
    assert ckpts[1] == str(out / 'train/coop/photo/seed1/prompt_learner.safetensors')
    assert (load_file(ckpts[1])['ctx'] - load_file(ckpts[2])['ctx']).abs().max() > 0
    for ds in ('photo/base', 'photo/new'):
        assert _cell_cfg(out, 'maple_tpt', ds, 1)['model']['prompt_checkpoint'].endswith(
            'train/maple/photo/seed1/prompt_learner.safetensors')
    # the novel cells test the other 10 classes
    new = json.loads((out / 'cells/coop/photo_new/seed1/metrics.json').read_text())
    assert new['num_samples'] == 20
    assert [row['name'] for row in new['per_class']] == ['ring', 'arrow', 'trapezoid', 'semicircle', 'lightning bolt',
                                                         'house', 'tree', 'hourglass', 'crown', 'cloud']
    assert [row['n'] for row in new['per_class']] == [2] * 10
    # an independent evaluation of the trained prompts gives the cell's number
    cfg = load_config(ROOT / 'configs/shapes/b2n/coop.py', {
        'data.dataset.subsample': 'new', 'data.dataset.domain': 'photo', 'data.dataset.per_class': 2,
        'model.prompt_checkpoint': ckpts[1], 'work_dir': str(env / 'by_hand'), 'seed': 1,
        'default_hooks.progress.disable': True})
    assert run_test(cfg)['metrics']['top1'] == result['cells']['coop']['photo/new'][0]['metrics']['top1']
    # PromptSync's bank was computed with the trained MaPLe prompts on the base classes' proxy images
    bank_file = _cell_cfg(out, 'promptsync', 'photo/base', 1)['prototypes']['file']
    assert bank_file == str(out / 'prototypes/promptsync/photo/seed1.safetensors')
    cell = load_config(out / 'cells/promptsync/photo_base/seed1/config.py')
    assert bank_fingerprint(bank_file) == fingerprint(cell, 'prototypes')  # the trained prompts are part of it
    assert load_file(bank_file)['counts'].tolist() == [2] * 10
    table = (out / 'benchmark.md').read_text()
    assert 'photo HM' in table and 'avg novel' in table

    # a re-run reuses every training, bank and cell
    monkeypatch.setattr(runs, 'run_test', lambda *a, **k: pytest.fail('a finished cell ran again'))
    monkeypatch.setattr(suite_training, 'train_prompts', lambda *a, **k: pytest.fail('trained again'))
    monkeypatch.setattr(suite_training, 'compute_prototypes', lambda *a, **k: pytest.fail('bank recomputed'))
    again = run_suite(load_config(SUITE, SMALL), out, root=ROOT)
    assert {r['status'] for r in again['prepared']} == {'reused'}
    assert again['table'] == result['table']


def test_a_failed_training_fails_only_its_cells(env, monkeypatch):
    options = dict(SMALL, **{'suite.methods': dict(_delete_=True,
        zeroshot=dict(config='configs/shapes/zeroshot.py', seeds=[1]),
        coop=dict(config='configs/shapes/b2n/coop.py', prompts='coop', seeds=[1]))})
    real = suite_training.train_prompts

    def fail_coop(cfg, **kwargs):
        raise RuntimeError('disk full')
    monkeypatch.setattr(suite_training, 'train_prompts', fail_coop)
    result = run_suite(load_config(SUITE, options), env / 'out', root=ROOT)
    assert [r['status'] for r in result['prepared']] == ['failed']
    assert 'disk full' in (env / 'out/train/coop/photo/seed1/error.txt').read_text()
    coop = result['cells']['coop']['photo/base'][0]
    assert coop['status'] == 'failed' and 'training coop/photo/seed1 failed: disk full' in coop['error']
    assert result['cells']['zeroshot']['photo/base'][0]['status'] == 'ran'
    assert len(result['failed']) == 2  # coop's base and new cells
    monkeypatch.setattr(suite_training, 'train_prompts', real)  # fixed: the re-run trains and runs them
    result = run_suite(load_config(SUITE, options), env / 'out', root=ROOT)
    assert not result['failed'] and result['prepared'][0]['status'] == 'ran'


@pytest.mark.parametrize('methods, message', [
    (dict(coop=dict(config='configs/shapes/b2n/coop.py', prompts='nope')), "prompts='nope' is not one of"),
    (dict(pa=dict(config='configs/shapes/promptalign.py', prototypes=True)), 'prototypes=True needs prompts='),
])
def test_suite_training_errors(env, methods, message):
    with pytest.raises(SuiteError, match='training configs that do not exist'):
        typo = {'suite.train.learners.coop': 'configs/shapes/coop_fewshot_typo.py'}
        run_suite(load_config(SUITE, dict(SMALL, **typo)), env / 'out', root=ROOT)
    with pytest.raises(SuiteError, match=message):
        run_suite(load_config(SUITE, dict(SMALL, **{'suite.methods': dict(_delete_=True, **methods)})), env / 'out',
                  root=ROOT)


def test_a_dataset_group_without_training_data_is_refused(env):
    options = dict(SMALL, **{'suite.datasets': {'_delete_': True, 'cartoon/base': {'data.dataset.domain': 'cartoon'}}})
    with pytest.raises(SuiteError, match="trains on group 'cartoon', which suite.train.datasets does not list"):
        run_suite(load_config(SUITE, options), env / 'out', root=ROOT)
