"""Dassl / CoOp / MaPLe / PromptAlign YAML configs -> promptsync configs (promptsync/interop, tools/convert_config.py).

The YAML files in tests/data/dassl_yaml/ are the published ones (header: repo, commit, path). Expectations are the
values of those files written out by hand, our own recipe configs, and the YAML text read independently of yacs.
"""
import re
from pathlib import Path

import pytest
import yaml
from mmengine.config import Config

from promptsync.engine.config_check import check_config
from promptsync.errors import ConfigError
from promptsync.interop import convert_dassl_config, load_conversion
from promptsync.interop.dassl_build import backbone_preprocessing
from promptsync.interop.dassl_config import dassl_defaults, leaves, mapping_table, rule_for
from promptsync.registry import PROMPT_LEARNERS

from ..tools.helpers import ROOT, load_tool

D = ROOT / 'tests' / 'data' / 'dassl_yaml'
CONFIGS = ROOT / 'configs'
MAPLE = D / 'maple_vit_b16_c2_ep5_batch4_2ctx.yaml'
MAPLE_XD = D / 'maple_vit_b16_c2_ep5_batch4_2ctx_cross_datasets.yaml'
COOP = D / 'coop_vit_b16_ep50.yaml'
COCOOP = D / 'cocoop_vit_b16_c4_ep10_batch1_ctxv1.yaml'
PA_DG = D / 'promptalign_DG_PAlign_vit_b16_c2_ep5_batch4_2ctx_cross_datasets.yaml'
PA_FG = D / 'promptalign_finegrain_PAlign_vit_b16_c2_ep5_batch4_2ctx_cross_datasets.yaml'
#: (trainer yaml, dataset yaml, job, trainer, trailing options), as the repos' scripts run them
PAIRS = [
    (MAPLE, D / 'coop_dataset_imagenet.yaml', 'train', 'MaPLe', ['DATASET.NUM_SHOTS', '16', 'DATASET.SUBSAMPLE_CLASSES', 'base']),
    (MAPLE_XD, D / 'coop_dataset_imagenet.yaml', 'train', 'MaPLe', ['DATASET.NUM_SHOTS', '16']),
    (MAPLE_XD, D / 'coop_dataset_oxford_pets.yaml', 'test', 'MaPLe', []),
    (COOP, D / 'coop_dataset_imagenet.yaml', 'train', 'CoOp',
     ['TRAINER.COOP.N_CTX', '16', 'TRAINER.COOP.CSC', 'False', 'TRAINER.COOP.CLASS_TOKEN_POSITION', 'end', 'DATASET.NUM_SHOTS', '16']),
    (COCOOP, D / 'coop_dataset_imagenet.yaml', 'train', 'CoCoOp', ['DATASET.NUM_SHOTS', '16', 'DATASET.SUBSAMPLE_CLASSES', 'base']),
    (COCOOP, D / 'coop_dataset_imagenet_r.yaml', 'test', 'CoCoOp', []),
    (PA_DG, D / 'promptalign_dataset_imagenet_r.yaml', 'test', 'PromptAlign', ['DATASET.NUM_SHOTS', '16']),
    (PA_FG, D / 'promptalign_dataset_oxford_pets.yaml', 'test', 'PromptAlign', ['DATASET.NUM_SHOTS', '16']),
    (D / 'ivlp_vit_b16_c2_ep5_batch4_2+2ctx.yaml', D / 'coop_dataset_imagenet.yaml', 'train', 'IVLP', ['DATASET.NUM_SHOTS', '16']),
    (D / 'vpt_vit_b16_c2_ep5_batch4_4.yaml', D / 'coop_dataset_imagenet.yaml', 'train', 'VPT', ['DATASET.NUM_SHOTS', '16']),
    (D / 'shapes_maple_tiny.yaml', D / 'shapes_dataset.yaml', 'train', 'MaPLe', ['DATASET.NUM_SHOTS', '2']),
]
CKPT = 'prompts.safetensors'


def convert(pair, **kw):
    trainer_yaml, dataset_yaml, job, trainer, opts = pair
    ckpt = CKPT if job == 'test' else None
    return convert_dassl_config(trainer_yaml, dataset_yaml, job, opts=opts, trainer=trainer, seed=1,
                                prompt_checkpoint=ckpt, **kw)


def yaml_keys(path) -> dict:
    """The keys a YAML file sets, read with plain yaml (not yacs)."""
    def walk(node, prefix=''):
        for k, v in node.items():
            if isinstance(v, dict):
                yield from walk(v, f'{prefix}{k}.')
            else:
                yield f'{prefix}{k}', v
    return dict(walk(yaml.safe_load(Path(path).read_text()) or {}))


def pair_id(pair):
    return f'{pair[0].stem}+{pair[1].stem}-{pair[2]}'


@pytest.mark.parametrize('pair', PAIRS, ids=pair_id)
def test_every_key_is_mapped_or_ignored_and_none_is_missing(pair):
    conv = convert(pair)
    keys = [e.key for e in conv.entries]
    assert len(keys) == len(set(keys))
    every = set(yaml.safe_load((ROOT / 'promptsync/interop/data/dassl_defaults.yaml').read_text()) and
                leaves(yaml.safe_load((ROOT / 'promptsync/interop/data/dassl_defaults.yaml').read_text())))
    assert set(keys) == every, 'the report must name every key of the merged config'
    set_here = set(yaml_keys(pair[0])) | set(yaml_keys(pair[1])) | set(pair[4][0::2])
    assert set_here <= set(keys)
    assert {e.verdict for e in conv.entries} <= {'mapped', 'ignored'}
    for e in conv.entries:
        assert e.verdict == 'mapped' and e.to or e.verdict == 'ignored' and e.note, e
    # the report printed and logged lists each key once
    text = conv.report()
    for key in keys:
        assert len(re.findall(rf'^    {re.escape(key)} = ', text, re.M)) == 1, key


def test_every_default_key_has_one_rule_and_every_rule_a_key():
    keys = list(leaves(dassl_defaults()))
    # 135 keys of dassl/config/defaults.py + 44 distinct extend_cfg keys of the three train.py files (counted with grep)
    assert len(keys) == 179
    used = {rule_for(k)['key'] for k in keys}
    table = {r['key'] for r in mapping_table()['rules']}
    assert used == table, f'rules without a key: {sorted(table - used)}'
    for r in mapping_table()['rules']:
        assert r['verdict'] in ('map', 'ignore', 'unsupported')
        assert ('fix' in r) == (r['verdict'] == 'unsupported'), r['key']
        assert ('other' in r) == ('jobs' in r), r['key']


def test_values_follow_yacs_as_the_repos_read_them():
    conv = convert(PAIRS[3])
    values = {e.key: e.value for e in conv.entries}
    assert values['INPUT.SIZE'] == (224, 224) and values['OPTIM.WARMUP_CONS_LR'] == 1e-5   # '1e-5' -> float
    assert values['TRAINER.COOP.CSC'] is False and values['DATASET.NUM_SHOTS'] == 16      # trailing options typed
    assert values['OPTIM.LR'] == 0.002 and values['SEED'] == 1


def _resolved(conv):
    return load_conversion(conv).to_dict()


def _recipe(bases, options=None):
    from promptsync.utils.config import load_config
    text = '_base_ = [' + ', '.join(repr(str(CONFIGS / b)) for b in bases) + ']\n'
    path = ROOT / 'work_dirs' / '.test_interop_recipe.py'
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    try:
        return load_config(path, options).to_dict()
    finally:
        path.unlink()


def test_maple_yamls_equal_our_maple_recipe():
    base2new = _resolved(convert(PAIRS[0]))
    xd = _resolved(convert(PAIRS[1]))
    recipe = _recipe(['_base_/default_runtime.py', '_base_/models/maple_vit_b16.py', '_base_/train/maple_fewshot.py'])
    # vit_b16_c2_ep5_batch4_2ctx.yaml is our configs/_base_/train/maple_fewshot.py
    for key in ('epochs', 'optimizer', 'warmup_epochs', 'warmup_lr', 'min_lr', 'train_view', 'final_model',
                'log_interval', 'type'):
        assert base2new['trainer'][key] == recipe['trainer'][key], key
    assert base2new['train_data']['num_shots'] == recipe['train_data']['num_shots'] == 16
    assert base2new['train_data']['batch_size'] == recipe['train_data']['batch_size'] == 4
    assert base2new['model']['backbone'] == recipe['model']['backbone'] | dict(precision='amp')
    assert base2new['model']['prompt_learner'] == dict(recipe['model']['prompt_learner'], depth=9)
    assert base2new['train_data']['dataset'] == dict(type='ImageNet', root='data', split='train', subsample='base')
    # the cross-dataset recipe: the base's NOTE (lr 0.0026, 2 epochs) and our maple_vit_b16 (depth 3)
    note = _recipe(['_base_/default_runtime.py', '_base_/models/maple_vit_b16.py', '_base_/train/maple_fewshot.py'],
                   {'trainer.optimizer.lr': 0.0026, 'trainer.epochs': 2})
    assert xd['trainer'] == note['trainer'] and xd['model'] == note['model']
    assert xd['seed'] == 1


def test_promptalign_yamls_equal_our_promptalign_configs():
    dg = _resolved(convert(PAIRS[6]))
    ours = Config.fromfile(str(CONFIGS / 'promptalign/vit_b16_imagenet_r.py')).to_dict()
    assert dg['data'].pop('num_workers') == 12 and ours['data'].pop('num_workers') == 4   # DATALOADER.NUM_WORKERS
    for key in ('tta', 'prototypes', 'data', 'proxy_data', 'metrics'):
        assert dg[key] == ours[key], key
    assert dg['model']['backbone'] == ours['model']['backbone']
    assert dg['model']['prompt_learner'] == ours['model']['prompt_learner']
    assert dg['model']['prompt_checkpoint'] == CKPT
    fg = _resolved(convert(PAIRS[7]))
    ours = Config.fromfile(str(CONFIGS / 'promptalign/vit_b16_cross_dataset.py')).to_dict()
    fg['data'].pop('num_workers'), ours['data'].pop('num_workers')
    for key in ('tta', 'prototypes', 'data'):
        assert fg[key] == ours[key], key
    # by hand from the YAML: layers range(0, 3 - 1), weight 100 / (3 - 0), AdamW lr 5e-4, 64 views, ratio 0.1
    assert fg['tta']['losses'][1] == dict(type='DistributionAlignmentLoss', weight=100.0 / 3, layers=(0, 1),
                                          mean_weight=0.5, var_weight=0.5)
    assert fg['tta']['optimizer'] == dict(type='AdamW', lr=5e-4, weight_decay=0.01)
    assert fg['tta']['views']['n_views'] == 64 and fg['tta']['selection']['ratio'] == 0.1


def test_promptalign_without_alignment_is_maple_tpt_and_layer_range_follows_promptalign():
    no_align = _resolved(convert((PA_DG, D / 'promptalign_dataset_imagenet_r.yaml', 'test', 'PromptAlign',
                                  ['TPT.DISTR_ALIGN', 'False'])))
    ours = Config.fromfile(str(CONFIGS / 'maple_tpt/vit_b16_imagenet_r.py')).to_dict()
    assert no_align['tta'] == ours['tta'] and 'prototypes' not in no_align
    wide = _resolved(convert((PA_DG, D / 'promptalign_dataset_imagenet_r.yaml', 'test', 'PromptAlign',
                              ['TPT.ALIGN_LAYER_FROM', '1', 'TPT.ALIGN_LAYER_TO', '6', 'TPT.DISTR_LOSS_W', '50.',
                               'TPT.TTA_STEPS', '2', 'TPT.BATCH_SIZE', '32'])))
    assert wide['tta']['losses'][1]['layers'] == (1, 2, 3, 4) and wide['tta']['losses'][1]['weight'] == 10.0
    assert wide['tta']['steps'] == 2 and wide['tta']['views']['n_views'] == 32


def test_coop_and_cocoop_values_by_hand():
    coop = _resolved(convert(PAIRS[3]))
    assert coop['model']['prompt_learner'] == dict(type='CoOp', n_ctx=16, ctx_init=None, class_token_position='end',
                                                   class_specific=False)
    assert coop['trainer']['optimizer'] == dict(type='SGD', lr=0.002, momentum=0.9, weight_decay=5e-4)
    assert (coop['trainer']['epochs'], coop['trainer']['warmup_epochs'], coop['trainer']['warmup_lr']) == (50, 1, 1e-5)
    assert coop['train_data']['batch_size'] == 32 and coop['train_data']['num_workers'] == 8
    assert coop['trainer']['log_interval'] == 5
    init = _resolved(convert((COOP, PAIRS[3][1], 'train', 'CoOp', ['TRAINER.COOP.CTX_INIT', 'a photo of a'])))
    assert init['model']['prompt_learner']['n_ctx'] is None   # CoOp: the words of CTX_INIT set the count
    assert init['train_data']['num_shots'] is None            # NUM_SHOTS -1: every image
    cocoop = _resolved(convert(PAIRS[4]))
    assert cocoop['model']['prompt_learner'] == dict(type='CoCoOp', n_ctx=None, ctx_init='a photo of a')
    assert cocoop['train_data']['batch_size'] == 1 and cocoop['trainer']['epochs'] == 10
    test = _resolved(convert(PAIRS[5]))
    assert test['tta'] == dict(type='ZeroShot', views=dict(type='OriginalView'))
    assert test['data']['batch_size'] == 100 and test['data']['dataset']['type'] == 'ImageNetR'
    imagenet = _resolved(convert((COCOOP, D / 'coop_dataset_imagenet.yaml', 'test', 'CoCoOp', [])))
    assert imagenet['data']['dataset']['split'] == 'val'   # CoOp tests ImageNet on its val images
    pets = _resolved(convert((COCOOP, D / 'coop_dataset_oxford_pets.yaml', 'test', 'CoCoOp',
                              ['TEST.SPLIT', 'val', 'DATASET.SUBSAMPLE_CLASSES', 'new'])))
    assert pets['data']['dataset'] == dict(type='OxfordPets', split='val', root='data', subsample='new')


def test_best_val_adds_coop_val_split_and_adam_keys_map():
    conv = _resolved(convert((COOP, D / 'coop_dataset_oxford_pets.yaml', 'train', 'CoOp',
                              ['TEST.FINAL_MODEL', 'best_val', 'DATASET.NUM_SHOTS', '8', 'OPTIM.NAME', 'adamw',
                               'OPTIM.ADAM_BETA2', '0.99', 'OPTIM.WARMUP_EPOCH', '-1'])))
    assert conv['trainer']['final_model'] == 'best_val'
    assert conv['val_data']['dataset'] == dict(type='OxfordPets', root='data', split='val', num_shots=4)
    assert conv['trainer']['optimizer'] == dict(type='AdamW', lr=0.002, weight_decay=5e-4, betas=(0.9, 0.99))
    assert conv['trainer']['warmup_epochs'] == 0


@pytest.mark.parametrize('opts, key, words', [
    (['OPTIM.STAGED_LR', 'True'], 'OPTIM.STAGED_LR', 'per-layer'),
    (['MODEL.INIT_WEIGHTS', 'w.pth'], 'MODEL.INIT_WEIGHTS', 'prompt_checkpoint'),
    (['INPUT.TRANSFORMS', "['random_resized_crop', 'cutout', 'normalize']"], 'INPUT.TRANSFORMS', 'cutout'),
    (['OPTIM.NAME', 'radam'], 'OPTIM.NAME', 'RAdam'),
    (['OPTIM.LR_SCHEDULER', 'single_step'], 'OPTIM.LR_SCHEDULER', 'cosine'),
    (['OPTIM.WARMUP_TYPE', 'linear'], 'OPTIM.WARMUP_TYPE', 'constant'),
    (['INPUT.PIXEL_MEAN', '[0.485, 0.456, 0.406]'], 'INPUT.PIXEL_MEAN', 'ViT-B-16-quickgelu'),
    (['INPUT.SIZE', '(336, 336)'], 'INPUT.SIZE', '(224, 224)'),
    (['INPUT.INTERPOLATION', 'bilinear'], 'INPUT.INTERPOLATION', "'bicubic'"),
    (['DATALOADER.TRAIN_X.SAMPLER', 'RandomClassSampler'], 'DATALOADER.TRAIN_X.SAMPLER', 'RandomSampler'),
    (['DATASET.SOURCE_DOMAINS', "['photo']"], 'DATASET.SOURCE_DOMAINS', 'no domains'),
])
def test_unsupported_values_are_refused_with_the_fix(opts, key, words):
    with pytest.raises(ConfigError) as err:
        convert((MAPLE, D / 'coop_dataset_imagenet.yaml', 'train', 'MaPLe', opts))
    assert f'- {key} = ' in err.value.message and words in err.value.message


def test_refusals_are_listed_together_and_wrong_combinations_are_refused():
    with pytest.raises(ConfigError) as err:
        convert((MAPLE, D / 'coop_dataset_imagenet.yaml', 'train', 'MaPLe',
                 ['OPTIM.STAGED_LR', 'True', 'OPTIM.NAME', 'radam', 'RESUME', 'out/']))
    assert err.value.message.startswith('3 key(s)')
    with pytest.raises(ConfigError, match="DATASET.TPT = 'PUG_SLight'.*write DATASET.TPT 'dtd'"):
        convert((PA_DG, D / 'promptalign_dataset_dtd.yaml', 'test', 'PromptAlign', []))  # the published dtd.yaml
    with pytest.raises(ConfigError, match='ALIGN_THRESHOLD'):
        convert((PA_DG, D / 'promptalign_dataset_imagenet_r.yaml', 'test', 'PromptAlign', ['TPT.ALIGN_THRESHOLD', '0.2']))
    with pytest.raises(ConfigError, match='VIS_MEANS.*prototypes.file'):
        convert((PA_DG, D / 'promptalign_dataset_imagenet_r.yaml', 'test', 'PromptAlign', ['TPT.VIS_MEANS', 'm.pt']))
    with pytest.raises(ConfigError, match='needs them.*model.prompt_checkpoint'):
        convert_dassl_config(MAPLE_XD, D / 'coop_dataset_oxford_pets.yaml', 'test', trainer='MaPLe')
    with pytest.raises(ConfigError, match='TRAINER.NAME is empty.*--trainer'):
        convert_dassl_config(MAPLE, D / 'coop_dataset_imagenet.yaml', 'train')
    with pytest.raises(ConfigError, match="'ZeroshotCLIP' is not a trainer"):
        convert_dassl_config(MAPLE, D / 'coop_dataset_imagenet.yaml', 'train', trainer='ZeroshotCLIP')
    with pytest.raises(ConfigError, match="'RN50x4' is not a backbone|ps-shapes-vit"):
        convert_dassl_config(MAPLE, D / 'coop_dataset_imagenet.yaml', 'train', trainer='MaPLe',
                             opts=['MODEL.BACKBONE.NAME', 'EfficientNet'])


def test_typos_and_wrong_types_are_actionable(tmp_path):
    bad = tmp_path / 'typo.yaml'
    bad.write_text(MAPLE.read_text().replace('  LR: 0.0035', '  LRR: 0.0035'))
    with pytest.raises(ConfigError, match=r'Non-existent config key: OPTIM\.LRR.*did you mean OPTIM\.LR'):
        convert_dassl_config(bad, trainer='MaPLe')
    with pytest.raises(ConfigError, match=r'DATASET\.NUM_SHOT\b.*did you mean DATASET\.NUM_SHOTS'):
        convert_dassl_config(MAPLE, trainer='MaPLe', opts=['DATASET.NUM_SHOT', '16'])
    with pytest.raises(ConfigError, match='KEY VALUE pairs'):
        convert_dassl_config(MAPLE, trainer='MaPLe', opts=['DATASET.NUM_SHOTS'])
    with pytest.raises(ConfigError, match='NUM_SHOTS'):
        convert_dassl_config(MAPLE, trainer='MaPLe', opts=['DATASET.NUM_SHOTS', 'many'])


def test_yaml_is_never_executed(tmp_path):
    marker = tmp_path / 'ran'
    py = tmp_path / 'evil.py'
    py.write_text(f'open({str(marker)!r}, "w").write("x")\ncfg = dict()\n')
    with pytest.raises(ConfigError, match='not a .yaml file'):
        convert_dassl_config(py, trainer='MaPLe')
    tagged = tmp_path / 'evil.yaml'
    tagged.write_text(f'SEED: !!python/object/apply:os.system ["touch {marker}"]\n')
    with pytest.raises(ConfigError, match='not valid YAML'):
        convert_dassl_config(tagged, trainer='MaPLe')
    assert not marker.exists()


def test_backbone_preprocessing_equals_the_built_backbone():
    from promptsync.models.backbones import OpenCLIP
    for name in ('ps-shapes-vit', 'ps-tiny-vit'):
        pp = OpenCLIP(name, pretrained=None, precision='fp32').preprocess_cfg
        want = backbone_preprocessing(name)
        assert (tuple(pp['size']), pp['interpolation']) == (want['size'], want['interpolation'])
        assert tuple(pp['mean']) == want['mean'] and tuple(pp['std']) == want['std']


@pytest.mark.parametrize('pair', PAIRS, ids=pair_id)
def test_convert_config_output_loads_and_passes_the_unknown_key_check(pair, tmp_path, capsys):
    learner = LEARNER = dict(CoOp='CoOp', CoCoOp='CoCoOp', MaPLe='MaPLe', IVLP='IVLP', VPT='VPT', PromptAlign='MaPLe')[pair[3]]
    del LEARNER
    if PROMPT_LEARNERS.get(learner) is None:
        pytest.skip(f'{learner} is not registered yet')
    out = tmp_path / 'sub' / 'converted.py'
    argv = [str(pair[0]), str(pair[1]), '--job', pair[2], '--trainer', pair[3], '--seed', '1', '-o', str(out)]
    if pair[2] == 'test':
        argv += ['--prompt-checkpoint', CKPT]
    load_tool('convert_config').main(argv + pair[4])
    text = out.read_text()
    assert f'sha256 ' in text and str(pair[0]) in text and 'ignored (' in text
    from promptsync.utils.config import load_config
    cfg = load_config(out)
    check_config(cfg, pair[2])
    assert cfg.to_dict() | {'filename': None} == _resolved(convert(pair)) | {'filename': None}
    assert 'mapped (' in capsys.readouterr().out


def test_train_tool_runs_a_shapes_yaml_pair_and_logs_the_report(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv('PROMPTSYNC_DATA', str(tmp_path / 'data'))
    work = tmp_path / 'work'
    load_tool('train').main([str(D / 'shapes_maple_tiny.yaml'), '--dataset-config-file', str(D / 'shapes_dataset.yaml'),
                             '--trainer', 'MaPLe', '--seed', '1', '--work-dir', str(work), '--device', 'cpu',
                             'DATASET.NUM_SHOTS', '1', '--cfg-options', 'train_data.dataset.per_class=2',
                             'default_hooks.progress.disable=True'])
    log = (work / 'log.txt').read_text()
    assert 'Dassl config conversion (train job, trainer MaPLe)' in log
    assert "TRAINER.MAPLE.PROMPT_DEPTH = 3 -> model.prompt_learner.depth" in log
    assert 'OUTPUT_DIR = ' in log and (work / 'prompt_learner.safetensors').is_file()
    cfg = Config.fromfile(str(work / 'config.py'))
    assert cfg.trainer.epochs == 1 and cfg.train_data.num_shots == 1 and cfg.trainer.optimizer.lr == 0.02
    assert cfg.trainer.train_view.crop_scale == (0.85, 1.0) and cfg.model.prompt_learner.depth == 3
    assert 'mapped (' in capsys.readouterr().out


def test_yaml_only_arguments_are_refused_with_a_python_config(tmp_path):
    with pytest.raises(ConfigError, match='belong to a .yaml CONFIG'):
        load_tool('train').main([str(CONFIGS / 'shapes/maple_fewshot.py'), '--trainer', 'MaPLe',
                                 '--work-dir', str(tmp_path)])


def test_the_docs_table_is_the_data():
    from promptsync.interop.dassl_doc import BEGIN, END, mapping_markdown
    text = (ROOT / 'docs' / 'interop.md').read_text()
    assert text.count(BEGIN) == 1, 'docs/interop.md must hold the generated table once'
    doc = text[text.index(BEGIN):text.index(END) + len(END)]
    assert doc == mapping_markdown(), ('docs/interop.md is out of date: regenerate it with python -c "from '
                                       'promptsync.interop.dassl_doc import mapping_markdown; print(mapping_markdown())"')


@pytest.mark.parametrize('pair, recipe', [(3, 'coop'), (4, 'cocoop'), (8, 'ivlp'), (9, 'vpt')])
def test_the_other_recipe_yamls_equal_our_recipe_configs(pair, recipe):
    """CoOp's, CoCoOp's, IVLP's and VPT's published YAMLs give the schedules of configs/_base_/train/<x>_fewshot.py
    (which a converted config also starts from)."""
    conv = convert(PAIRS[pair])
    got = _resolved(conv)
    ours = _recipe([f'_base_/train/{recipe}_fewshot.py'])
    assert f'_base_/train/{recipe}_fewshot.py' in conv.bases
    for key in ('epochs', 'optimizer', 'warmup_epochs', 'warmup_lr', 'min_lr', 'train_view', 'final_model', 'type'):
        assert got['trainer'][key] == ours['trainer'][key], key
    assert got['train_data']['batch_size'] == ours['train_data']['batch_size']


def test_a_line_of_their_scripts_gives_the_same_config():
    """MaPLe's base2new_train script spells CONFIG --config-file and the work dir --output-dir, with the trailing
    options after every argument: the same config as the positional form."""
    from promptsync.utils.cli import config_from_args
    tool = load_tool('test')
    theirs = tool.parse_args(['--root', 'data', '--seed', '1', '--trainer', 'MaPLe',
                              '--dataset-config-file', str(D / 'coop_dataset_imagenet.yaml'),
                              '--config-file', str(MAPLE), '--output-dir', 'out/b2n/seed1',
                              'DATASET.NUM_SHOTS', '16', 'DATASET.SUBSAMPLE_CLASSES', 'base'])
    ours = tool.parse_args([str(MAPLE), '--dataset-config-file', str(D / 'coop_dataset_imagenet.yaml'), '--trainer',
                            'MaPLe', '--root', 'data', '--seed', '1', '--work-dir', 'out/b2n/seed1',
                            'DATASET.NUM_SHOTS', '16', 'DATASET.SUBSAMPLE_CLASSES', 'base'])
    assert theirs.config == ours.config == str(MAPLE) and theirs.opts == ours.opts
    a, b = config_from_args(theirs, job='train').to_dict(), config_from_args(ours, job='train').to_dict()
    assert a == b and a['work_dir'] == 'out/b2n/seed1' and a['train_data']['dataset']['subsample'] == 'base'
    with pytest.raises(SystemExit):  # no CONFIG at all
        tool.parse_args(['--seed', '1'])
