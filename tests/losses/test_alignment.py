"""Alignment losses against hand computations (PromptAlign's formula, written out with F.l1_loss)."""
import pytest
import torch
import torch.nn.functional as F

from promptsync.datasets.base import LabelSpace
from promptsync.losses import ClassAwarePrototypeAlignmentLoss, DistributionAlignmentLoss
from promptsync.losses.alignment import aligned_l1
from promptsync.models import PromptedCLIP
from promptsync.models.prompt_learners import CoOp

from .helpers import make_bank, make_ctx

NAMES = ['cat', 'dog', 'bird', 'fish']
IDS = ['n1', 'n2', 'n3', 'n4']


@pytest.fixture
def model(backbone):
    return PromptedCLIP(backbone, CoOp(backbone, classnames=NAMES))


def stats(tokens, idx):
    x = tokens[idx]
    mu = x.mean(0)
    return mu, ((x - mu) ** 2).mean(0)


def promptalign_by_hand(ctx, mean_src, var_src, layers=(0, 1)):
    """PromptAlign's distr_align_loss: 0.5 * L1(mean) + 0.5 * L1(var) per layer, summed."""
    total = 0.0
    for lay in layers:
        mu, s2 = stats(ctx.vision_tokens[lay], ctx.selected)
        total = total + 0.5 * F.l1_loss(mu, mean_src[lay]) + 0.5 * F.l1_loss(s2, var_src[lay])
    return total


def pooled_by_hand(bank, layers=(0, 1)):
    w = bank.counts.double() / bank.counts.sum()
    mean, var = {}, {}
    for lay in layers:
        m = sum(w[k] * bank.mean[lay][k].double() for k in range(bank.num_classes))
        v = sum(w[k] * (bank.var[lay][k].double() + (bank.mean[lay][k].double() - m) ** 2)
                for k in range(bank.num_classes))
        mean[lay], var[lay] = m.float(), v.float()
    return mean, var


def test_distribution_alignment_is_promptalign(tmp_path, model):
    bank = make_bank(tmp_path / 'b.safetensors', NAMES, IDS)
    loss = DistributionAlignmentLoss(str(tmp_path / 'b.safetensors'))
    loss.setup(model)
    ctx = make_ctx(model)
    value = loss(ctx)
    mean_src, var_src = pooled_by_hand(bank)
    ref = promptalign_by_hand(ctx, mean_src, var_src)
    assert float(value) == pytest.approx(float(ref), abs=1e-5)
    g = torch.autograd.grad(value, [ctx.vision_tokens[0], ctx.vision_tokens[1]])
    g_ref = torch.autograd.grad(ref, [ctx.vision_tokens[0], ctx.vision_tokens[1]])
    for a, b in zip(g, g_ref):
        assert torch.allclose(a, b, atol=1e-6)
    assert loss.summary()['mode'] == 'class_agnostic'


def test_class_aware_with_one_class_reduces_to_promptalign(tmp_path, model):
    make_bank(tmp_path / 'one.safetensors', ['all classes'])
    aware = ClassAwarePrototypeAlignmentLoss(str(tmp_path / 'one.safetensors'))
    plain = DistributionAlignmentLoss(str(tmp_path / 'one.safetensors'))
    aware.setup(model)
    plain.setup(model)
    ctx = make_ctx(model)
    assert float(aware(ctx)) == pytest.approx(float(plain(ctx)), abs=1e-6)


def test_class_aware_with_one_hot_weights_is_promptalign_on_that_class(tmp_path, model):
    bank = make_bank(tmp_path / 'b.safetensors', NAMES, IDS)
    loss = ClassAwarePrototypeAlignmentLoss(str(tmp_path / 'b.safetensors'), top_k=1)
    loss.setup(model, LabelSpace(tuple(NAMES), tuple(IDS)))
    ctx = make_ctx(model)
    idx = torch.cat([ctx.selected, torch.tensor([0])])
    top = int(ctx.logits[idx].softmax(-1).mean(0).argmax())
    ref = promptalign_by_hand(ctx, {lay: bank.mean[lay][top] for lay in (0, 1)},
                              {lay: bank.var[lay][top] for lay in (0, 1)})
    assert float(loss(ctx)) == pytest.approx(float(ref), abs=1e-5)


@pytest.mark.parametrize('include_original', [True, False])
def test_class_aware_weighted_sum_by_hand(tmp_path, model, include_original):
    bank = make_bank(tmp_path / 'b.safetensors', NAMES, IDS)
    loss = ClassAwarePrototypeAlignmentLoss(str(tmp_path / 'b.safetensors'), include_original=include_original,
                                            detach_weights=False, chunk=3)
    loss.setup(model, LabelSpace(tuple(NAMES), tuple(IDS)))
    ctx = make_ctx(model)
    value = loss(ctx)
    idx = torch.cat([ctx.selected, torch.tensor([0])]) if include_original else ctx.selected
    p_bar = ctx.logits[idx].softmax(-1).mean(0)
    ref = sum(p_bar[k] * promptalign_by_hand(ctx, {lay: bank.mean[lay][k] for lay in (0, 1)},
                                             {lay: bank.var[lay][k] for lay in (0, 1)}) for k in range(4))
    assert float(value) == pytest.approx(float(ref), abs=1e-5)
    inputs = [ctx.vision_tokens[0], ctx.vision_tokens[1], ctx.logits]
    for a, b in zip(torch.autograd.grad(value, inputs), torch.autograd.grad(ref, inputs)):
        assert torch.allclose(a, b, atol=1e-6)


def test_detached_weights_give_no_gradient_to_logits(tmp_path, model):
    make_bank(tmp_path / 'b.safetensors', NAMES, IDS)
    loss = ClassAwarePrototypeAlignmentLoss(str(tmp_path / 'b.safetensors'))
    loss.setup(model, LabelSpace(tuple(NAMES), tuple(IDS)))
    ctx = make_ctx(model)
    value = loss(ctx)
    assert torch.autograd.grad(value, ctx.logits, allow_unused=True)[0] is None


def test_unmatched_classes_use_the_class_agnostic_statistics(tmp_path, model):
    bank = make_bank(tmp_path / 'b.safetensors', ['cat', 'dog', 'bird', 'horse'], ['n1', 'n2', 'n3', 'n9'])
    loss = ClassAwarePrototypeAlignmentLoss(str(tmp_path / 'b.safetensors'), include_original=False)
    loss.setup(model, LabelSpace(tuple(NAMES), tuple(IDS)))  # 'fish' (n4) is not in the proxy set
    assert loss.summary()['matched'] == 3 and loss.summary()['unmatched_examples'] == ['fish']
    ctx = make_ctx(model)
    p_bar = ctx.logits[ctx.selected].softmax(-1).mean(0).detach()
    g_mean, g_var = pooled_by_hand(bank)
    rows = [({lay: bank.mean[lay][k] for lay in (0, 1)}, {lay: bank.var[lay][k] for lay in (0, 1)}) for k in range(3)]
    rows.append((g_mean, g_var))
    ref = sum(p_bar[k] * promptalign_by_hand(ctx, *rows[k]) for k in range(4))
    assert float(loss(ctx)) == pytest.approx(float(ref), abs=1e-5)


def test_weighted_l1_gradients_match_autograd():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, generator=g, requires_grad=True)
    rows = torch.randn(7, 3, 5, generator=g)
    w = torch.rand(7, generator=g).requires_grad_(True)
    out = aligned_l1(x, rows, w, 2)
    ref = sum(w[r] * (x - rows[r]).abs().mean() for r in range(7))
    assert float(out) == pytest.approx(float(ref), abs=1e-6)
    for a, b in zip(torch.autograd.grad(out, [x, w]), torch.autograd.grad(ref, [x, w])):
        assert torch.allclose(a, b, atol=1e-6)


def test_shape_mismatch_is_explained(tmp_path, model):
    make_bank(tmp_path / 'b.safetensors', NAMES, IDS, shape=(7, 4))
    loss = DistributionAlignmentLoss(str(tmp_path / 'b.safetensors'))
    loss.setup(model)
    with pytest.raises(ValueError, match='number of visual prompt tokens'):
        loss(make_ctx(model))
    with pytest.raises(KeyError, match='recompute'):
        DistributionAlignmentLoss(str(tmp_path / 'b.safetensors'), layers=(0, 3)).setup(model)
    with pytest.raises(ValueError, match='needs prototypes'):
        DistributionAlignmentLoss().setup(model)


def test_pooled_statistics(tmp_path, model):
    bank = make_bank(tmp_path / 'p.safetensors', ['all classes'], pooled=True)
    loss = DistributionAlignmentLoss(str(tmp_path / 'p.safetensors'))
    loss.setup(model)
    ctx = make_ctx(model)
    ref = 0.0
    for lay in (0, 1):
        x = ctx.vision_tokens[lay][ctx.selected].reshape(-1, 4)
        mu = x.mean(0)
        ref = ref + 0.5 * F.l1_loss(mu, bank.mean[lay][0]) + 0.5 * F.l1_loss(((x - mu) ** 2).mean(0), bank.var[lay][0])
    assert float(loss(ctx)) == pytest.approx(float(ref), abs=1e-5)
