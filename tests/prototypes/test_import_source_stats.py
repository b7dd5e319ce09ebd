"""PromptAlign's vis_means.pt / vis_vars.pt -> a prototype bank: written from a natively computed bank in
PromptAlign's layout, imported, compared exactly; a PromptAlign run accepts it and predicts as with the native bank."""
import json

import pytest
import torch

from promptsync.errors import CorruptFileError, ProvenanceError
from promptsync.losses import DistributionAlignmentLoss
from promptsync.models import build_model
from promptsync.prototypes import PrototypeBank

from ..losses.helpers import make_ctx
from ..tools.helpers import ROOT, load_tool, options

ALL_LAYERS = (0, 1, 2)  # every block of the tiny ViT: PromptAlign's files hold all of them


@pytest.fixture(scope='module')
def setup(tmp_path_factory, fake_folder):
    """A tiny PromptAlign config, its natively computed bank (all layers), and PromptAlign's two files from it."""
    tmp = tmp_path_factory.mktemp('import')
    cfg_path = tmp / 'my_promptalign.py'
    cfg_path.write_text(f"_base_ = ['{ROOT / 'configs/promptalign/vit_b16_imagenet_r.py'}']\n"
                        f"proxy_data = dict(dataset=dict(_delete_=True, type='ImageFolder', root='{fake_folder}'), "
                        "num_workers=0)\n")
    ov = {'model.backbone.model_name': 'ps-tiny-vit', 'model.backbone.pretrained': None,
          'model.backbone.precision': 'fp32', 'model.prompt_checkpoint': None, 'data.dataset.type': 'ImageFolder',
          'data.dataset.root': str(fake_folder), 'data.num_workers': 0, 'device': 'cpu',
          'default_hooks.progress.disable': True, 'tta.views.n_views': 8, 'tta.selection.ratio': 0.25,
          'prototypes.dtype': 'float32', 'prototypes.layers': '[0,1,2]',
          'prototypes.file': str(tmp / 'native.safetensors')}
    native = PrototypeBank.load(load_tool('compute_prototypes').main([str(cfg_path), *options(ov)]))
    means, variances = native.global_stats(ALL_LAYERS)  # PromptAlign's class-agnostic statistics
    torch.save(torch.stack([means[lay] for lay in ALL_LAYERS]), tmp / 'vis_means.pt')  # [L, T, D]
    torch.save(torch.stack([variances[lay] for lay in ALL_LAYERS]), tmp / 'vis_vars.pt')
    return tmp, cfg_path, ov, native


def import_bank(setup, dst, *extra):
    tmp, cfg_path, ov, _ = setup
    return load_tool('import_source_stats').main([str(tmp / 'vis_means.pt'), str(tmp / 'vis_vars.pt'), str(dst),
                                                  '--config', str(cfg_path), *extra, *options(ov)])


def test_import_equals_the_native_statistics_exactly(setup):
    tmp, _, ov, native = setup
    path = import_bank(setup, tmp / 'imported.safetensors', '--layers', '0', '1')
    bank = PrototypeBank.load(path)
    assert bank.layers == (0, 1) and bank.num_classes == 1 and bank.visual is None
    g_mean, g_var = native.global_stats((0, 1))
    i_mean, i_var = bank.global_stats((0, 1))
    for lay in (0, 1):
        assert bank.mean[lay].shape == (1, 19, 64)  # CLS + 16 patches + 2 MaPLe tokens, width 64
        assert torch.equal(i_mean[lay], g_mean[lay]) and torch.equal(i_var[lay], g_var[lay])
    meta = bank.metadata
    assert meta['origin'] == 'imported' and meta['source_format'] == 'promptalign-vis-stats'
    assert len(meta['imported_means_sha256']) == 64 and meta['images'] == 'unknown (imported)'
    assert meta['backbone'] == 'ps-tiny-vit' and 'fingerprint' not in meta
    src = json.loads(meta['import_source'])
    assert src['backbone']['model_name'] == 'ps-tiny-vit' and src['prompt_learner']['type'] == 'MaPLe'
    # the loss PromptAlign runs reads the same numbers from either bank
    model = build_model(dict(backbone=dict(type='OpenCLIP', model_name='ps-tiny-vit', pretrained=None,
                                           precision='fp32'), prompt_learner=dict(type='MaPLe', n_ctx=2, depth=3)),
                        ['a', 'b', 'c', 'd'], 'cpu')
    ctx = make_ctx(model, shape=(19, 64))
    values = []
    for bank_path in (ov['prototypes.file'], path):
        loss = DistributionAlignmentLoss(str(bank_path), layers=(0, 1))
        loss.setup(model)
        values.append(loss(ctx))
    assert torch.equal(values[0], values[1]) and float(values[0]) > 0


def test_a_promptalign_run_accepts_it_and_predicts_as_with_the_native_bank(setup):
    tmp, cfg_path, ov, _ = setup
    imported = import_bank(setup, tmp / 'run_bank.safetensors')  # the config's layers (0, 1, 2)
    test_tool = load_tool('test')
    runs = {}
    for name, bank in (('native', ov['prototypes.file']), ('imported', str(imported))):
        runs[name] = test_tool.main([str(cfg_path), '--work-dir', str(tmp / f'run_{name}'), *options(dict(
            ov, **{'prototypes.file': bank, 'data.max_samples': 4, 'tta.views.n_views': 4, 'tta.selection.ratio': 0.5}))])
    lines = {k: [json.loads(x) for x in (tmp / f'run_{k}' / 'predictions.jsonl').read_text().splitlines()]
             for k in runs}
    assert len(lines['native']) == 4
    keep = ('index', 'pred', 'topk', 'confidence', 'loss')  # the alignment loss of every sample, as recorded
    assert [{k: r[k] for k in keep} for r in lines['native']] == [{k: r[k] for k in keep} for r in lines['imported']]
    assert all(r['loss']['DistributionAlignmentLoss'] > 0 for r in lines['imported'])
    run = json.loads((tmp / 'run_imported' / 'run.json').read_text())
    assert 'imported' in json.dumps(run)
    # another model than the one it was imported for: refused, naming what differs
    with pytest.raises(ProvenanceError, match='imported .* for another model.*prompt_learner'):
        test_tool.main([str(cfg_path), '--work-dir', str(tmp / 'run_other'), *options(dict(
            ov, **{'prototypes.file': str(imported), 'model.prompt_learner.depth': 2}))])
    # PromptSync's per-class prototypes cannot come from PromptAlign's files
    sync = tmp / 'my_promptsync.py'
    sync.write_text(cfg_path.read_text().replace('promptalign/vit_b16_imagenet_r.py', 'promptsync/vit_b16_imagenet_r.py'))
    with pytest.raises(ProvenanceError, match='ClassAwarePrototypeAlignmentLoss.*per-class and visual prototypes'):
        test_tool.main([str(sync), '--work-dir', str(tmp / 'run_sync'), *options(dict(
            ov, **{'prototypes.file': str(imported)}))])


def test_wrong_files_are_refused(setup, tmp_path):
    tmp, cfg_path, ov, _ = setup
    means = torch.load(tmp / 'vis_means.pt')
    torch.save(means[:, :17], tmp_path / 'short.pt')  # no prompt tokens: computed without MaPLe's 2 tokens
    torch.save(torch.load(tmp / 'vis_vars.pt')[:, :17], tmp_path / 'short_vars.pt')
    with pytest.raises(ValueError, match='tokens 17, width 64.*tokens 19, width 64'):
        load_tool('import_source_stats').main([str(tmp_path / 'short.pt'), str(tmp_path / 'short_vars.pt'),
                                               str(tmp_path / 'o.safetensors'), '--config', str(cfg_path),
                                               *options(ov)])
    torch.save(-torch.load(tmp / 'vis_vars.pt'), tmp_path / 'neg.pt')
    with pytest.raises(CorruptFileError, match='not variances'):
        load_tool('import_source_stats').main([str(tmp / 'vis_means.pt'), str(tmp_path / 'neg.pt'),
                                               str(tmp_path / 'o.safetensors'), '--config', str(cfg_path),
                                               *options(ov)])
    torch.save(means[:2], tmp_path / 'two.pt')
    torch.save(torch.load(tmp / 'vis_vars.pt')[:2], tmp_path / 'two_vars.pt')
    with pytest.raises(ValueError, match='the statistics have 2 layers; layers \\[0, 1, 2\\]'):
        load_tool('import_source_stats').main([str(tmp_path / 'two.pt'), str(tmp_path / 'two_vars.pt'),
                                               str(tmp_path / 'o.safetensors'), '--config', str(cfg_path),
                                               *options(ov)])
    assert not (tmp_path / 'o.safetensors').exists()
