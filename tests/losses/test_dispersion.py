"""C-TPT's TextFeatureDispersionLoss: ATFD and its gradient against hand computations; C-TPT's fast engine against
the reference loop."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from promptsync.hooks import Hook, HookList
from promptsync.losses import TextFeatureDispersionLoss, WeightedLossSum, text_feature_dispersion
from promptsync.models import PromptedCLIP
from promptsync.models.prompt_learners import CoOp, MaPLe
from promptsync.tta.context import TTAContext
from promptsync.tta.methods import EpisodicTTA

from ..conftest import CLASSES

ENTROPY = dict(type='MarginalEntropyLoss', weight=1.0)
DISPERSION = dict(type='TextFeatureDispersionLoss', weight=50.0)
N_SAMPLES, N_VIEWS = 3, 8


def naive_atfd(t: np.ndarray) -> float:
    centroid = t.sum(axis=0) / t.shape[0]
    return float(np.mean([math.sqrt(((row - centroid) ** 2).sum()) for row in t]))


def test_atfd_hand_value():
    t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    # centroid (0, 1/3): distances sqrt(10)/3, 2/3, sqrt(10)/3
    expected = (2 * math.sqrt(10) / 3 + 2 / 3) / 3
    assert float(text_feature_dispersion(t)) == pytest.approx(expected, abs=1e-6)
    assert float(text_feature_dispersion(torch.ones(4, 3))) == 0.0  # identical features: no dispersion
    with pytest.raises(ValueError, match=r'\[C, E\]'):
        text_feature_dispersion(torch.ones(2, 3, 4))


def test_loss_and_gradient_through_the_normalisation_match_a_hand_computation():
    """The loss is -ATFD of the normalised features; its gradient w.r.t. the raw (unnormalised) features is
    -(1/C) (u_c - mean_k u_k) (u_c = (t_c - m) / |t_c - m|), through the Jacobian (I - t t^T) / |x| of the
    normalisation."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(5, 7, generator=g, dtype=torch.float64)
    raw = x.clone().requires_grad_(True)
    ctx = TTAContext(index=0, label=0, views=torch.zeros(2, 3, 4, 4), model=None,
                     text_features=F.normalize(raw, dim=-1))
    loss = TextFeatureDispersionLoss()(ctx)
    loss.backward()

    xn = x.numpy()
    t = xn / np.linalg.norm(xn, axis=1, keepdims=True)
    assert float(loss) == pytest.approx(-naive_atfd(t), abs=1e-6)
    c = t.shape[0]
    d = t - t.mean(axis=0)
    u = d / np.linalg.norm(d, axis=1, keepdims=True)
    grad_t = -(u - u.mean(axis=0)) / c                        # d(-ATFD)/dt_c
    grad_x = np.stack([(np.eye(t.shape[1]) - np.outer(t[i], t[i])) @ grad_t[i] / np.linalg.norm(xn[i])
                       for i in range(c)])
    assert np.abs(raw.grad.numpy() - grad_x).max() < 1e-6  # computed in float32: ~1e-8 here


def test_reads_no_view_and_is_batch_safe():
    ctx = TTAContext(index=0, label=0, views=torch.zeros(6, 3, 4, 4), model=None, selected=torch.tensor([4, 1]))
    loss = TextFeatureDispersionLoss()
    assert loss.batch_safe and loss.views_read(ctx).numel() == 0
    both = WeightedLossSum([ENTROPY, DISPERSION])
    assert both.batch_safe and both.views_read(ctx).tolist() == [1, 4]  # only the entropy's selected views
    with pytest.raises(RuntimeError, match='text_features'):
        loss(ctx)


# ---------------------------------------------------------------------- C-TPT in the episodic engine
class Record(Hook):
    batch_safe = True

    def __init__(self):
        self.selected, self.losses, self.terms, self.text = {}, {}, {}, {}

    def after_selection(self, runner, ctx):
        self.selected[ctx.index] = ctx.selected.tolist()

    def after_loss(self, runner, ctx):
        self.losses[(ctx.index, ctx.step)] = float(ctx.loss.detach())
        self.terms[(ctx.index, ctx.step)] = dict(ctx.loss_terms)
        self.text[(ctx.index, ctx.step)] = ctx.text_features.detach().clone()


def _batch():
    g = torch.Generator().manual_seed(7)
    return dict(views=torch.randn(N_SAMPLES, N_VIEWS, 3, 32, 32, generator=g), label=torch.arange(N_SAMPLES),
                index=torch.arange(20, 20 + N_SAMPLES), path=[f'img{i}' for i in range(N_SAMPLES)])


def run(backbone, learner_kind, mode, losses, batch_size=1, steps=1, reference_text=False):
    torch.manual_seed(11)
    learner = (MaPLe(backbone, classnames=CLASSES) if learner_kind == 'maple' else
               CoOp(backbone, ctx_init='a photo of a', classnames=CLASSES))
    backbone.truncate_text = not reference_text
    record = Record()
    tta = EpisodicTTA(PromptedCLIP(backbone, learner), losses=losses,
                      selection=dict(type='ConfidenceSelection', ratio=0.25), optimizer=dict(type='AdamW', lr=0.05),
                      steps=steps, mode=mode, batch_size=batch_size, hooks=HookList([record]))
    try:
        results = tta.process_batch(_batch())
    finally:
        backbone.truncate_text = True
    return torch.stack([r.logits for r in results]), record, tta


def test_the_loss_reads_the_normalised_text_features_of_the_current_prompts(backbone):
    logits, record, tta = run(backbone, 'coop', 'reference', [ENTROPY, DISPERSION], reference_text=True, steps=2)
    for (index, step), terms in record.terms.items():
        text = record.text[(index, step)]
        assert torch.allclose(text.norm(dim=-1), torch.ones(len(CLASSES)), atol=1e-5)
        assert terms['TextFeatureDispersionLoss'] == pytest.approx(-naive_atfd(text.double().numpy()), abs=1e-5)
        total = terms['MarginalEntropyLoss'] + 50.0 * terms['TextFeatureDispersionLoss']
        assert record.losses[(index, step)] == pytest.approx(total, rel=1e-5)
    with torch.no_grad():  # step 0 sees the initial prompts
        initial = tta.model.text_features()
    assert torch.allclose(record.text[(20, 0)], initial, atol=1e-5)
    assert not torch.allclose(record.text[(20, 1)], initial, atol=1e-4)


@pytest.mark.parametrize('learner_kind, steps', [('coop', 2), ('maple', 1)])  # cached images; grad_views='used'
def test_ctpt_fast_engine_equals_the_reference_loop(backbone, learner_kind, steps):
    ctpt = [ENTROPY, DISPERSION]
    ref = run(backbone, learner_kind, 'reference', ctpt, steps=steps, reference_text=True)
    if learner_kind == 'coop':  # the dispersion term moves the predictions: the comparison can fail
        tpt = run(backbone, learner_kind, 'reference', [ENTROPY], steps=steps, reference_text=True)[0]
        assert (ref[0] - tpt).abs().max() > 0.05
    for batch_size in (1, 3):
        logits, rec, tta = run(backbone, learner_kind, 'fast', ctpt, batch_size=batch_size, steps=steps)
        assert tta.engine_summary()['mode'] == 'fast' and tta.engine_summary()['one_at_a_time_because'] == []
        assert rec.selected == ref[1].selected
        assert rec.losses.keys() == ref[1].losses.keys()
        for key, value in ref[1].losses.items():
            assert rec.losses[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
        assert torch.equal(logits.argmax(-1), ref[0].argmax(-1))
        assert (logits - ref[0]).abs().max() < 1e-4
