"""TPS against an independent computation of its steps (hand-built graph, AdamW's first step by hand or a fresh
torch optimizer), and its invariants: episodic, independent of the batch size, zero steps = zero-shot."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from promptsync.errors import ConfigError
from promptsync.hooks import Hook, HookList
from promptsync.models import PromptedCLIP
from promptsync.models.prompt_learners import TemplatePrompts
from promptsync.tta.methods import TPS, ZeroShot

from ..conftest import CLASSES

LR, WD, EPS = 0.05, 0.01, 1e-8
N_VIEWS, KEPT = 8, 2  # 25% of 8 views


class Record(Hook):
    batch_safe = True

    def __init__(self):
        self.selected, self.losses, self.stages = {}, {}, []

    def before_sample(self, runner, ctx):
        self.stages.append(('before_sample', ctx.index))

    def after_selection(self, runner, ctx):
        self.selected[(ctx.index, ctx.step)] = ctx.selected.tolist()

    def after_loss(self, runner, ctx):
        self.losses[(ctx.index, ctx.step)] = float(ctx.loss.detach())

    def after_sample(self, runner, ctx, result):
        self.stages.append(('after_sample', ctx.index))


def make_tps(backbone, hooks=(), **kw):
    model = PromptedCLIP(backbone, TemplatePrompts(backbone, classnames=CLASSES))
    args = dict(selection=dict(type='ConfidenceSelection', ratio=0.25),
                optimizer=dict(type='AdamW', lr=LR, weight_decay=WD), steps=1)
    args.update(kw)
    return TPS(model, hooks=HookList(list(hooks)), **args)


def batch(indices, seed=0):
    g = torch.Generator().manual_seed(seed)
    views = torch.randn(max(indices) + 1, N_VIEWS, 3, 32, 32, generator=g)[list(indices)]
    return dict(views=views, label=torch.tensor([i % len(CLASSES) for i in indices]), index=torch.tensor(indices),
                path=[f'img{i}' for i in indices])


def logits_of(results):
    return torch.stack([r.logits for r in results])


# ---------------------------------------------------------------------- the independent computation
def naive_features(backbone, views):
    """Image features of the views and the "a photo of a {c}." prototypes, straight from the open_clip model."""
    m = backbone.model
    with torch.no_grad():
        img = F.normalize(m.encode_image(views), dim=-1)
        ids = backbone.tokenize([f"a photo of a {c.replace('_', ' ')}." for c in CLASSES])
        protos = F.normalize(m.encode_text(ids), dim=-1)
    return img, protos, m.logit_scale.exp().detach()


def naive_loss(img, protos, scale, shift):
    """Marginal entropy of the KEPT lowest-entropy views (numpy sort) with the shifted prototypes."""
    logits = scale * img @ F.normalize(protos + shift, dim=-1).t()
    p = logits.softmax(-1).detach().double().numpy()
    chosen = np.argsort(-(p * np.log(p)).sum(-1), kind='stable')[:KEPT]
    pbar = logits[torch.as_tensor(chosen)].softmax(-1).mean(0)
    return -(pbar * pbar.log()).sum(), sorted(chosen.tolist())


@pytest.mark.parametrize('per_class, optimizer', [(True, 'AdamW'), (False, 'SGD')])
def test_one_step_matches_a_hand_computation(backbone, per_class, optimizer):
    opt = dict(type='AdamW', lr=LR, weight_decay=WD) if optimizer == 'AdamW' else dict(type='SGD', lr=20.0)
    record = Record()
    tps = make_tps(backbone, hooks=[record], per_class=per_class, optimizer=opt)
    b = batch([0])
    with torch.no_grad():  # the method enables gradients itself
        result = tps.process_batch(b)[0]

    img, protos, scale = naive_features(backbone, b['views'][0])
    shift = torch.zeros(len(CLASSES) if per_class else 1, protos.shape[1], requires_grad=True)
    loss, chosen = naive_loss(img, protos, scale, shift)
    loss.backward()
    g = shift.grad
    if optimizer == 'AdamW':  # first step from zero: decay of 0 is 0, m_hat = g, v_hat = g^2
        adapted = -LR * g / (g.abs() + EPS)
    else:
        adapted = -20.0 * g
    expected = scale * img[:1] @ F.normalize(protos + adapted, dim=-1).t()
    zero_shot = scale * img[:1] @ protos.t()

    assert sorted(record.selected[(0, 0)]) == chosen
    assert record.losses[(0, 0)] == pytest.approx(float(loss), abs=1e-5)
    assert result.loss_terms == {'MarginalEntropyLoss': pytest.approx(float(loss), abs=1e-5)}
    assert (expected - zero_shot).abs().max() > 0.02  # the step moves the prediction: the comparison can fail
    assert torch.allclose(result.logits, expected[0], atol=1e-4)
    assert all(p.grad is None for p in backbone.parameters())  # nothing reaches the encoders


def test_two_steps_reselect_and_match_a_fresh_torch_optimizer(backbone):
    record = Record()
    tps = make_tps(backbone, hooks=[record], steps=2)
    b = batch([3], seed=1)
    result = tps.process_batch(b)[0]

    img, protos, scale = naive_features(backbone, b['views'][0])
    shift = torch.zeros(len(CLASSES), protos.shape[1], requires_grad=True)
    opt = torch.optim.AdamW([shift], lr=LR, weight_decay=WD)
    for step in range(2):
        loss, chosen = naive_loss(img, protos, scale, shift)
        assert sorted(record.selected[(3, step)]) == chosen  # selected again on the shifted logits
        assert record.losses[(3, step)] == pytest.approx(float(loss), abs=1e-5)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        expected = scale * img[:1] @ F.normalize(protos + shift, dim=-1).t()
    assert torch.allclose(result.logits, expected[0], atol=1e-4)


# ---------------------------------------------------------------------- invariants
def test_episodic_and_independent_of_the_batch_size(backbone):
    indices = [0, 1, 2, 3]
    record = Record()
    together = make_tps(backbone, hooks=[record])
    all_at_once = logits_of(together.process_batch(batch(indices)))
    assert together.summary()['samples_together'] is True
    assert record.stages[:4] == [('before_sample', i) for i in indices]  # hooks see every sample's stages
    one_by_one = make_tps(backbone)
    alone = torch.cat([logits_of(one_by_one.process_batch(batch([i]))) for i in indices])
    assert (all_at_once - alone).abs().max() < 1e-5
    for i in (0, 2):  # each sample alone on a fresh method: the shift restarts from zero for every image
        fresh = logits_of(make_tps(backbone).process_batch(batch([i])))[0]
        assert (fresh - alone[i]).abs().max() < 1e-5
    zero_shot = logits_of(make_tps(backbone, steps=0).process_batch(batch(indices)))
    assert (all_at_once - zero_shot).abs().max() > 0.02  # it adapted
    summary = together.summary()
    assert summary['samples_adapted'] == 4 and summary['shift'] == 'per_class' and summary['mean_shift_norm'] > 0


def test_samples_together_with_sgd_equal_each_alone(backbone):
    """SGD sees the gradient's size: the samples' losses are summed, not averaged."""
    sgd = dict(type='SGD', lr=20.0)
    together = logits_of(make_tps(backbone, optimizer=sgd).process_batch(batch([0, 1])))
    alone = torch.cat([logits_of(make_tps(backbone, optimizer=sgd).process_batch(batch([i]))) for i in (0, 1)])
    assert (together - alone).abs().max() < 1e-5


def test_an_optimizer_not_known_elementwise_adapts_one_sample_at_a_time(backbone):
    record = Record()
    tps = make_tps(backbone, hooks=[record], optimizer=dict(type='Rprop', lr=0.01))
    assert tps.summary()['samples_together'] is False
    together = logits_of(tps.process_batch(batch([0, 1])))
    assert record.stages == [('before_sample', 0), ('after_sample', 0), ('before_sample', 1), ('after_sample', 1)]
    alone = torch.cat([logits_of(make_tps(backbone, optimizer=dict(type='Rprop', lr=0.01)).process_batch(batch([i])))
                       for i in (0, 1)])
    assert (together - alone).abs().max() < 1e-5


def test_zero_steps_is_zero_shot(backbone):
    tps = make_tps(backbone, steps=0)
    zs = ZeroShot(tps.model)
    b = batch([0, 1, 2])
    assert (logits_of(tps.process_batch(b)) - logits_of(zs.process_batch(b))).abs().max() < 1e-5


def test_shared_shift_moves_every_prototype_by_the_same_vector(backbone):
    tps = make_tps(backbone, per_class=False)
    protos = tps.prototypes()
    shift = torch.randn(2, 1, protos.shape[1])
    shifted = tps.shifted(protos, shift)
    assert shifted.shape == (2, len(CLASSES), protos.shape[1])
    assert torch.allclose(shifted[1], F.normalize(protos + shift[1], dim=-1))


class Blowup(Hook):
    batch_safe = True

    def after_loss(self, runner, ctx):
        ctx.loss = ctx.loss * float('inf')


def test_bad_config_and_non_finite_loss_are_errors(backbone):
    with pytest.raises(ConfigError, match="tta.per_class must be True or False, got 'yes'"):
        make_tps(backbone, per_class='yes')
    with pytest.raises(ConfigError, match='tta.steps=-1'):
        make_tps(backbone, steps=-1)
    with pytest.raises(FloatingPointError, match='loss of sample 0'):
        make_tps(backbone, hooks=[Blowup()]).process_batch(batch([0]))
