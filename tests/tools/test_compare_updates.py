"""tools/compare_updates.py: identical configs agree exactly; per-term gradients add up to the total."""
import pytest
import torch
from mmengine.config import Config

from promptsync.experiments.compare_updates import _probe, compare_updates, spread
from promptsync.engine import compute_prototypes

from ..conftest import TINY
from .helpers import load_tool


def tiny_cfg(folder, proto, losses):
    return Config(dict(
        model=dict(backbone=dict(type='OpenCLIP', model_name=TINY, pretrained=None, precision='fp32'),
                   prompt_learner=dict(type='MaPLe', n_ctx=2, depth=3)),
        data=dict(dataset=dict(type='ImageFolder', root=str(folder))),
        proxy_data=dict(dataset=dict(type='ImageFolder', root=str(folder)), batch_size=6),
        prototypes=dict(file=str(proto), layers=(0, 1)),
        tta=dict(type='EpisodicTTA', views=dict(type='TPTViews', n_views=8),
                 selection=dict(type='ConfidenceSelection', ratio=0.25), losses=losses,
                 optimizer=dict(type='AdamW', lr=1e-2)),
        seed=0, device='cpu', log_level='WARNING', custom_hooks=[]))


ENT = [dict(type='MarginalEntropyLoss')]
SYNC = ENT + [dict(type='ClassAwarePrototypeAlignmentLoss', weight=100 / 3), dict(type='PrototypeDiscriminationLoss')]


@pytest.fixture(scope='module')
def proto(tmp_path_factory, fake_folder):
    out = tmp_path_factory.mktemp('p') / 'proto.safetensors'
    compute_prototypes(tiny_cfg(fake_folder, out, ENT))
    return out


def test_identical_configs_agree_and_terms_add_up(tmp_path, fake_folder, proto, capsys):
    records = _probe(tiny_cfg(fake_folder, proto, SYNC), samples=3)
    for r in records:  # the per-term gradients add up to the gradient the optimizer used
        assert torch.allclose(r['total'], r['grad'], rtol=1e-3, atol=1e-4) and set(r['terms']) == {
            'MarginalEntropyLoss', 'ClassAwarePrototypeAlignmentLoss', 'PrototypeDiscriminationLoss'}
        delta = r['after'] - r['before']
        moved = r['total'].abs() > 1e-6  # a fresh AdamW step moves a coordinate against its gradient's sign
        assert (torch.sign(delta[moved]) == -torch.sign(r['total'][moved])).float().mean() > 0.95
    cfg_file = tmp_path / 'sync.py'
    cfg_file.write_text(tiny_cfg(fake_folder, proto, SYNC).pretty_text)
    out = load_tool('compare_updates').main([str(cfg_file), str(cfg_file), '--samples', '3'])
    assert out['update_sign_agreement'] == 1.0 and out['prediction_agreement'] == 100.0
    assert out['update_cosine'] == pytest.approx(1.0, abs=1e-6)
    assert 'ClassAwarePrototypeAlignmentLoss' in capsys.readouterr().out


def test_samples_are_spread_over_the_class_sorted_dataset():
    indices = list(range(100, 200))  # e.g. 10 classes x 10 images, sorted by class
    assert spread(indices, 10) == list(range(100, 200, 10))  # one image of every class, not class 0 ten times
    assert spread(indices, 3) == [100, 133, 166] and spread(indices, 500) == indices


def test_a_lone_term_decides_every_sign_it_reaches(fake_folder, proto):
    cfg = tiny_cfg(fake_folder, proto, ENT)
    out = compare_updates(cfg, cfg, samples=2)
    ent = out['terms_of_b']['MarginalEntropyLoss']
    assert ent['sign_share'] == 1.0 and 0 < ent['touched'] <= 1 and ent['grad_norm'] > 0
    # the prototype terms reach only part of the prompts (e.g. prototype_to_text discrimination never reaches the
    # text-to-vision couplings); their share is counted over what they reach
    both = compare_updates(cfg, tiny_cfg(fake_folder, proto, SYNC), samples=2)['terms_of_b']
    assert all(0 <= t['sign_share'] <= 1 and 0 < t['touched'] <= 1 for t in both.values())
