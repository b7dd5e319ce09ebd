"""TPT+CoCoOp (``ConditionedEpisodicTTA``): one step by hand (the context conditioned on the original view, the
marginal entropy of the confident views, AdamW's first step written out), the reset between images, the fast
engine against the reference loop, steps=0 = CoCoOp, and the refusals."""
import pytest
import torch
import torch.nn.functional as F

from promptsync.errors import ConfigError
from promptsync.models import PromptedCLIP
from promptsync.models.prompt_learners import CoCoOp, CoOp
from promptsync.tta.methods import ConditionedEpisodicTTA, ZeroShot

from ..conftest import CLASSES
from ..models.cocoop_naive import naive_class_features, naive_context

ENTROPY = [dict(type='MarginalEntropyLoss', weight=1.0)]
N_VIEWS, RATIO, LR, WD = 8, 0.25, 0.05, 0.01


pytestmark = pytest.mark.usefixtures('one_thread')  # tests/conftest.py


@pytest.fixture(scope='module')
def model(backbone):
    torch.manual_seed(0)
    learner = CoCoOp(backbone, classnames=CLASSES)
    with torch.no_grad():
        for p in learner.meta_net.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    return PromptedCLIP(backbone, learner)


def method(model, **kw):
    args = dict(losses=ENTROPY, selection=dict(type='ConfidenceSelection', ratio=RATIO),
                optimizer=dict(type='AdamW', lr=LR, weight_decay=WD), steps=1, condition_features='unnormalized')
    args.update(kw)
    return ConditionedEpisodicTTA(model, **args)


def batch(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return dict(views=torch.randn(n, N_VIEWS, 3, 32, 32, generator=g), label=torch.arange(n) % len(CLASSES),
                index=torch.arange(n))


def by_hand(model, views, features='unnormalized'):
    """TPT's test_time_tuning with --cocoop on one image, written out: gen_ctx, forward_ctx, the confident views,
    avg_entropy, AdamW's first step; then the prediction on the original view with the tuned context."""
    bb, learner = model.backbone, model.prompt_learner
    with torch.no_grad():
        raw = bb.encode_image(views).float()
        f = F.normalize(raw, dim=-1)
        c0 = naive_context(learner, raw[0] if features == 'unnormalized' else f[0]).detach()
    c = c0.clone().requires_grad_(True)
    with torch.enable_grad():
        logits = bb.logit_scale() * f @ naive_class_features(bb, CLASSES, c).t()
        logp = logits.log_softmax(-1)
        entropy = -(logp.exp() * logp).sum(-1)
        chosen = torch.argsort(entropy)[:int(N_VIEWS * RATIO)]
        avg = logits[chosen].softmax(-1).mean(0)
        loss = -(avg * avg.log()).sum()
        (g,) = torch.autograd.grad(loss, c)
    # AdamW, step 1: decoupled decay, then m_hat = g and sqrt(v_hat) = |g|
    c1 = c0 * (1 - LR * WD) - LR * g / (g.abs() + 1e-8)
    with torch.no_grad():
        pred = bb.logit_scale() * f[0] @ naive_class_features(bb, CLASSES, c1).t()
    return pred, float(loss), c0


@pytest.mark.parametrize('mode', ['reference', 'fast'])
def test_one_step_by_hand(model, mode):
    data = batch(2)
    results = method(model, mode=mode).process_batch(data)
    for b, result in enumerate(results):
        pred, loss, c0 = by_hand(model, data['views'][b])
        assert result.loss_terms['MarginalEntropyLoss'] == pytest.approx(loss, rel=1e-5)
        assert torch.allclose(result.logits, pred, atol=1e-4), (mode, b)
        _, _, c0_normed = by_hand(model, data['views'][b], 'normalized')
        assert not torch.allclose(c0, c0_normed, atol=1e-3)  # the two conditionings differ (the test can tell)


def test_the_tuned_context_predicts_and_each_image_starts_afresh(model):
    """The prediction differs from the untuned one; A then B equals B alone; the learners are left as they were."""
    data = batch(2, seed=1)
    cocoop_state = {k: v.clone() for k, v in model.prompt_learner.state_dict().items()}
    m = method(model, mode='reference')
    tuned_ctx = m.learner.ctx.detach().clone()
    both = m.process_batch(data)
    alone = method(model, mode='reference').process_batch({k: v[1:] for k, v in data.items()})
    assert torch.equal(both[1].logits, alone[0].logits)
    assert torch.equal(m.learner.ctx.detach(), tuned_ctx)  # the episodic reset put the bound state back
    assert all(torch.equal(v, model.prompt_learner.state_dict()[k]) for k, v in cocoop_state.items())
    untuned = method(model, mode='reference', steps=0).process_batch(data)
    assert not torch.allclose(untuned[0].logits, both[0].logits, atol=1e-3)


@pytest.mark.parametrize('steps', [1, 2])
@pytest.mark.parametrize('features', ['unnormalized', 'normalized'])
def test_fast_equals_reference(model, steps, features):
    data = batch(4, seed=2)
    ref = method(model, mode='reference', steps=steps, condition_features=features).process_batch(data)
    for size in ('auto', 3):  # 4 copies at once; a copy group of 3 plus one sample on the learner itself
        fast_method = method(model, mode='fast', steps=steps, condition_features=features, batch_size=size)
        fast = fast_method.process_batch(data)
        assert fast_method.summary()['engine']['mode'] == 'fast'
        for r, f in zip(ref, fast):
            assert r.pred == f.pred
            assert torch.allclose(r.logits, f.logits, atol=1e-4), (steps, features, size)
            assert r.loss_terms == pytest.approx(f.loss_terms, rel=1e-5)


def test_zero_steps_with_normalised_conditioning_is_cocoop(model):
    data = batch(3, seed=3)
    tuned = method(model, steps=0, condition_features='normalized').process_batch(data)
    plain = ZeroShot(model).process_batch(data)
    for a, b in zip(tuned, plain):
        assert torch.allclose(a.logits, b.logits, atol=1e-5)


def test_refusals(model, backbone):
    with pytest.raises(ConfigError, match='EpisodicReset'):
        method(model, reset=dict(type='NoReset'))
    with pytest.raises(ConfigError, match='reuse_initial_text'):
        method(model, reuse_initial_text=True)
    with pytest.raises(ConfigError, match='condition_features'):
        method(model, condition_features='raw')
    with pytest.raises(ConfigError, match='vision tokens'):
        method(model, losses=ENTROPY + [dict(type='DistributionAlignmentLoss', layers=(0,), prototypes='x.pt')])
    with pytest.raises(ConfigError, match='not one'):
        method(PromptedCLIP(backbone, CoOp(backbone, classnames=CLASSES)))
    m = method(model)
    with pytest.raises(ConfigError, match='AdaptationRecorder'):
        m.initial_text_features()
    with pytest.raises(ConfigError, match='condition_view'):
        method(model, condition_view=N_VIEWS).process_batch(batch(1))
