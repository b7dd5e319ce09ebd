"""Registries: auto-import, close-match errors, argument errors, user modules through custom_imports."""
import subprocess
import sys
import textwrap

import pytest
import torch

from promptsync.losses import WeightedLossSum, marginal_entropy
from promptsync.registry import ALL_REGISTRIES, LOSSES, OPTIMIZERS, TTA_METHODS
from promptsync.tta.context import TTAContext
from promptsync.utils.config import load_config


def test_the_required_registries_exist():
    for name in ['BACKBONES', 'PROMPT_LEARNERS', 'TTA_METHODS', 'TTA_HOOKS', 'LOSSES', 'TRAINERS', 'DATASETS',
                 'TRANSFORMS', 'METRICS']:
        assert name in ALL_REGISTRIES


def test_members_register_without_importing_their_files():
    code = textwrap.dedent("""
        import sys
        from promptsync.registry import LOSSES, TTA_METHODS, DATASETS, BACKBONES
        assert 'promptsync.losses' not in sys.modules
        print(type(LOSSES.build(dict(type='MarginalEntropyLoss'))).__name__)
        print(TTA_METHODS.get('EpisodicTTA').__name__, DATASETS.get('ImageNetR').__name__,
              BACKBONES.get('OpenCLIP').__name__)
    """)
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ['MarginalEntropyLoss', 'EpisodicTTA', 'ImageNetR', 'OpenCLIP']


def test_every_registry_imports_its_location():
    for name, reg in ALL_REGISTRIES.items():
        reg.import_from_location()
        assert len(reg.module_dict) > 0, name


def test_unknown_type_lists_close_matches():
    with pytest.raises(KeyError) as err:
        LOSSES.build(dict(type='MarginalEntropyLos'))
    msg = str(err.value)
    assert 'Did you mean: MarginalEntropyLoss' in msg and 'custom_imports' in msg
    with pytest.raises(KeyError, match='EpisodicTTA'):
        TTA_METHODS.build(dict(type='episodic'))


def test_bad_arguments_name_the_registry_and_type():
    with pytest.raises(TypeError, match="optimizer type 'AdamW'"):
        OPTIMIZERS.build(dict(type='AdamW', params=[torch.zeros(1, requires_grad=True)], lrr=0.1))


def test_user_loss_via_custom_imports(tmp_path, monkeypatch):
    (tmp_path / 'my_user_losses.py').write_text(textwrap.dedent("""
        from promptsync.losses import TTALoss, marginal_entropy
        from promptsync.registry import LOSSES

        @LOSSES.register_module()
        class TwiceEntropyLoss(TTALoss):
            def __init__(self, factor=2.0):
                super().__init__()
                self.factor = factor

            def forward(self, ctx):
                return self.factor * marginal_entropy(ctx.selected_logits)
    """))
    (tmp_path / 'cfg.py').write_text(textwrap.dedent("""
        custom_imports = dict(imports=['my_user_losses'], allow_failed_imports=False)
        tta = dict(losses=[dict(type='MarginalEntropyLoss', weight=1.0),
                           dict(type='TwiceEntropyLoss', weight=0.5, factor=3.0)])
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = load_config(tmp_path / 'cfg.py')
    losses = WeightedLossSum(cfg.tta.losses)
    logits = torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 0.5]])
    ctx = TTAContext(index=0, label=0, views=torch.zeros(2, 3, 4, 4), model=None, logits=logits,
                     selected=torch.tensor([0, 1]))
    total, terms = losses(ctx)
    h = float(marginal_entropy(logits))
    assert terms == pytest.approx({'MarginalEntropyLoss': h, 'TwiceEntropyLoss': 3 * h})
    assert float(total) == pytest.approx(h + 0.5 * 3 * h)


def test_repeated_loss_types_get_distinct_names():
    losses = WeightedLossSum([dict(type='MarginalEntropyLoss'), dict(type='MarginalEntropyLoss', name='ent_b'),
                              dict(type='MarginalEntropyLoss')])
    assert [n for n, _, _ in losses.terms] == ['MarginalEntropyLoss', 'ent_b', 'MarginalEntropyLoss_1']
    with pytest.raises(ValueError, match='at least one loss'):
        WeightedLossSum([])


def test_registries_are_children_of_mmengine_roots_in_the_promptsync_scope():
    from mmengine import registry as mm
    from mmengine.registry import DefaultScope

    from promptsync import registry as ps
    pairs = dict(BACKBONES=mm.MODELS, DATASETS=mm.DATASETS, TRANSFORMS=mm.TRANSFORMS, METRICS=mm.METRICS,
                 OPTIMIZERS=mm.OPTIMIZERS, HOOKS=mm.HOOKS, LOOPS=mm.LOOPS, RUNNERS=mm.RUNNERS,
                 PARAM_SCHEDULERS=mm.PARAM_SCHEDULERS)
    for name, root in pairs.items():
        reg = getattr(ps, name)
        assert reg.parent is root and reg.scope == 'promptsync' and root.children['promptsync'] is reg, name
    for reg in ps.ALL_REGISTRIES.values():
        assert reg.scope == 'promptsync'
    assert ps.TTA_HOOKS is ps.HOOKS
    # the torch optimizers come from mmengine's registry: none is registered again here
    assert not ps.OPTIMIZERS.module_dict and ps.OPTIMIZERS.get('AdamW') is torch.optim.AdamW
    # mmengine's root finds our modules by scope, and register_all_modules sets the default scope
    ps.register_all_modules()
    assert DefaultScope.get_current_instance().scope_name == 'promptsync'
    assert mm.MODELS.get('promptsync.OpenCLIP').__name__ == 'OpenCLIP'
    assert mm.LOOPS.get('promptsync.TTALoop').__name__ == 'TTALoop'
