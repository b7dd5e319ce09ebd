"""Shipped configs: they compose, every type they name is registered, overrides apply."""
from pathlib import Path

import pytest

from promptsync.registry import registries_of
from promptsync.engine.provenance import fingerprint
from promptsync.utils.config import load_config

ROOT = Path(__file__).resolve().parents[1]
ALL_CONFIGS = sorted(p for p in (ROOT / 'configs').rglob('*.py') if '_base_' not in p.parts)
#: what each kind of top-level config must define (evaluation methods, training, pretraining, suites)
KINDS = {'tta': ('model', 'data', 'tta', 'metrics', 'seed'), 'trainer': ('model', 'train_data', 'trainer', 'seed'),
         'train': ('model_name', 'data', 'train', 'output', 'seed'), 'suite': ('suite',)}


def types_in(tree):
    if isinstance(tree, dict):
        if isinstance(tree.get('type'), str):
            yield tree['type']
        for v in tree.values():
            yield from types_in(v)
    elif isinstance(tree, (list, tuple)):
        for v in tree:
            yield from types_in(v)


def registered(name):
    return bool(registries_of(name))


@pytest.mark.parametrize('path', ALL_CONFIGS, ids=lambda p: str(p.relative_to(ROOT / 'configs')))
def test_config_composes_and_names_registered_types(path):
    cfg = load_config(path)
    kinds = [k for k in KINDS if k in cfg]
    assert len(kinds) == 1, f'{path} is not exactly one kind of config ({kinds})'
    for key in KINDS[kinds[0]]:
        assert key in cfg, f'{path} misses {key}'
    if 'suite' in cfg:  # every method config a suite names exists and composes
        for entry in cfg.suite.methods.values():
            assert 'tta' in load_config(ROOT / entry['config'])
    missing = [t for t in types_in(cfg.to_dict()) if not registered(t)]
    assert not missing, f'{path} names unregistered types {missing}'


def test_tpt_config_is_the_reference_recipe():
    cfg = load_config(ROOT / 'configs/tpt/vit_b16_imagenet_r.py')
    assert cfg.model.backbone.model_name == 'ViT-B-16-quickgelu' and cfg.model.backbone.pretrained == 'openai'
    assert cfg.model.prompt_learner.to_dict() == dict(type='CoOp', n_ctx=4, ctx_init='a photo of a',
                                                      class_token_position='end')
    assert cfg.tta.views.n_views == 64 and cfg.tta.views.augmix is False
    assert cfg.tta.selection.ratio == 0.1 and cfg.tta.steps == 1
    assert cfg.tta.optimizer.type == 'AdamW' and cfg.tta.optimizer.lr == 5e-3
    assert [l_['type'] for l_ in cfg.tta.losses] == ['MarginalEntropyLoss']
    assert cfg.tta.reset.type == 'EpisodicReset'
    assert cfg.data.dataset.type == 'ImageNetR'


def test_ensemble_config_only_changes_templates():
    single = load_config(ROOT / 'configs/zeroshot/vit_b16_imagenet_r.py')
    ens = load_config(ROOT / 'configs/zeroshot/vit_b16_imagenet_r_ensemble.py')
    assert ens.model.prompt_learner.templates == 'imagenet80'
    ens.model.prompt_learner.templates = 'single'
    assert fingerprint(ens) == fingerprint(single)


def test_cfg_options_and_env_data_root(monkeypatch, tmp_path):
    monkeypatch.setenv('PROMPTSYNC_DATA', str(tmp_path))
    cfg = load_config(ROOT / 'configs/tpt/vit_b16_imagenet_r.py',
                      {'tta.optimizer.lr': 0.1, 'tta.losses.0.weight': 2.0, 'seed': 3})
    assert cfg.tta.optimizer.lr == 0.1 and cfg.tta.losses[0].weight == 2.0 and cfg.seed == 3
    assert cfg.data.dataset.root == str(tmp_path)


def test_fingerprint_ignores_runtime_only_keys():
    a = load_config(ROOT / 'configs/tpt/vit_b16_imagenet_r.py')
    b = load_config(ROOT / 'configs/tpt/vit_b16_imagenet_r.py',
                    {'data.num_workers': 0, 'work_dir': '/x', 'data.max_samples': 5, 'custom_hooks': []})
    c = load_config(ROOT / 'configs/tpt/vit_b16_imagenet_r.py', {'tta.optimizer.lr': 1e-3})
    assert fingerprint(a) == fingerprint(b) != fingerprint(c)


def test_missing_config_file():
    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_config(ROOT / 'configs/nope.py')


SUITES = sorted((ROOT / 'configs' / 'suites').glob('*.py'))


@pytest.mark.parametrize('path', SUITES, ids=lambda p: p.stem)
def test_every_suite_cell_config_has_only_known_keys(path, tmp_path):
    """Each (method, dataset) cell of a suite, with the dataset's per-method overrides (e.g. TDA's and DPE's
    per-dataset values), passes the unknown-key check a run makes: a misspelt override key fails here."""
    from promptsync.engine.config_check import check_config
    from promptsync.experiments.suites import cell_config, dataset_overrides
    suite = load_config(path).suite
    options = dict(suite.get('cfg_options') or {})
    for method, entry in suite.methods.items():
        for name, ds in suite.datasets.items():
            cfg = cell_config(str(ROOT / entry['config']), dict(options, **dict(entry.get('cfg_options') or {})),
                              dataset_overrides(ds, method), 0, tmp_path)
            check_config(cfg, 'test')


@pytest.mark.parametrize('path', [p for p in SUITES if 'train' in load_config(p).suite], ids=lambda p: p.stem)
def test_every_suite_training_config_has_only_known_keys(path, tmp_path):
    """The training of each (learner, dataset group) a suite runs before its cells (base-to-novel), with the group's
    overrides, passes the unknown-key check of tools/train.py; every group a dataset trains on is listed."""
    from promptsync.engine.config_check import check_config
    from promptsync.experiments.suite_training import SuiteTraining, dataset_group
    suite = load_config(path).suite
    methods = {m: dict(e, seeds=[1]) for m, e in suite.methods.items()}
    training = SuiteTraining(suite.train, methods, suite.datasets, tmp_path, ROOT, resume=True)
    assert {dataset_group(n, d) for n, d in suite.datasets.items()} <= set(training.group_overrides)
    for learner in training.learners:
        for group in training.group_overrides:
            check_config(training.train_config(learner, group, 1), 'train')
