"""PromptSync / PromptAlign / MaPLe+TPT configs: they differ only in their losses, and run end to end."""
import pytest

from promptsync.prototypes import PrototypeBank
from promptsync.utils.config import load_config

from .helpers import ROOT, load_tool, options

DATASETS = ('a', 'r', 'v2', 'sketch')


def cfg_dict(method, ds='r'):
    return load_config(ROOT / f'configs/{method}/vit_b16_imagenet_{ds}.py').to_dict()


@pytest.mark.parametrize('ds', DATASETS)
def test_methods_differ_only_in_losses(ds):
    sync, align, base = cfg_dict('promptsync', ds), cfg_dict('promptalign', ds), cfg_dict('maple_tpt', ds)
    assert [x['type'] for x in sync['tta'].pop('losses')] == \
        ['MarginalEntropyLoss', 'ClassAwarePrototypeAlignmentLoss', 'PrototypeDiscriminationLoss']
    assert [x['type'] for x in align['tta'].pop('losses')] == ['MarginalEntropyLoss', 'DistributionAlignmentLoss']
    assert [x['type'] for x in base['tta'].pop('losses')] == ['MarginalEntropyLoss']
    assert sync == align
    for key in ('prototypes', 'proxy_data'):  # MaPLe+TPT needs no source data
        align.pop(key)
    assert align == base


def test_reference_recipe_defaults():
    cfg = load_config(ROOT / 'configs/promptalign/vit_b16_imagenet_a.py')
    assert cfg.tta.views.n_views == 64 and cfg.tta.selection.ratio == 0.1 and cfg.tta.steps == 1
    assert cfg.tta.optimizer.type == 'AdamW' and cfg.tta.optimizer.lr == 4e-2
    assert cfg.model.prompt_learner.type == 'MaPLe' and cfg.model.prompt_learner.n_ctx == 2
    assert cfg.model.prompt_learner.depth == 3
    align = cfg.tta.losses[1]
    assert align.weight == pytest.approx(100 / 3) and tuple(align.layers) == (0, 1)
    assert cfg.data.dataset.type == 'ImageNetA' and cfg.proxy_data.dataset.split == 'train'


@pytest.fixture(scope='module')
def tools():
    return load_tool('test'), load_tool('compute_prototypes')


def test_prototypes_then_all_three_methods_end_to_end(tools, tmp_path, tiny_overrides):
    test_tool, proto_tool = tools
    ov = dict(tiny_overrides, **{'tta.views.n_views': 8, 'tta.selection.ratio': 0.25, 'model.prompt_checkpoint': None,
                                 'prototypes.file': str(tmp_path / 'proto.safetensors'), 'prototypes.dtype': 'float32'})
    # a user config that swaps the proxy source set (ImageNet train -> the generated folder)
    def user_cfg(method):  # the method's config with the proxy set swapped, as for the bank it reads
        path = tmp_path / f'my_{method}.py'
        path.write_text(f"_base_ = ['{ROOT / f'configs/{method}/vit_b16_imagenet_r.py'}']\n"
                        f"proxy_data = dict(dataset=dict(_delete_=True, type='ImageFolder', "
                        f"root='{tiny_overrides['data.dataset.root']}'), num_workers=0)\n")
        return str(path)
    bank = PrototypeBank.load(proto_tool.main([user_cfg('promptsync'), *options(ov)]))
    assert bank.num_classes == 4 and bank.layers == (0, 1)
    results = {}
    for method in ('maple_tpt', 'promptalign', 'promptsync'):
        argv = [user_cfg(method), '--work-dir', str(tmp_path / method), *options(ov),
                'default_hooks.progress.disable=True']
        results[method] = test_tool.main(argv)
    for method, out in results.items():
        assert out['num_samples'] == 12, method
    stats = results['promptsync']['method_stats']['losses']
    assert stats['ClassAwarePrototypeAlignmentLoss']['matched'] == 4
    assert stats['PrototypeDiscriminationLoss']['text_classes'] == 'target'
    assert results['promptalign']['method_stats']['losses']['DistributionAlignmentLoss']['mode'] == 'class_agnostic'
