"""Prototype discrimination: both readings against hand computations; the reused gradient is the true one."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from promptsync.datasets.base import LabelSpace
from promptsync.losses import PrototypeDiscriminationLoss
from promptsync.models import PromptedCLIP
from promptsync.models.prompt_learners import CoOp, MaPLe

from .helpers import make_bank, make_ctx

NAMES = ['cat', 'dog', 'bird', 'fish']
IDS = ['n1', 'n2', 'n3', 'n4']
SPACE = LabelSpace(tuple(NAMES), tuple(IDS))


def log_softmax_np(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.fixture
def model(backbone):
    return PromptedCLIP(backbone, CoOp(backbone, classnames=NAMES))


def test_prototype_to_text_by_hand(tmp_path, model):
    bank = make_bank(tmp_path / 'b.safetensors', NAMES, IDS)
    loss = PrototypeDiscriminationLoss(str(tmp_path / 'b.safetensors'), temperature=0.05, reuse=False)
    loss.setup(model, SPACE)
    assert loss.text_classes == 'target'
    ctx = make_ctx(model)
    ctx.text_features = model.text_features()
    v = bank.visual.numpy()
    t = ctx.text_features.detach().numpy()
    logits = (v / np.linalg.norm(v, axis=1, keepdims=True)) @ t.T / 0.05
    ref = -np.mean([log_softmax_np(logits)[c, c] for c in range(4)])
    assert float(loss(ctx)) == pytest.approx(ref, abs=1e-4)


def test_only_matched_classes_enter_the_target_reading(tmp_path, model):
    bank = make_bank(tmp_path / 'b.safetensors', ['cat', 'dog', 'cow'], ['n1', 'n2', 'n7'])
    loss = PrototypeDiscriminationLoss(str(tmp_path / 'b.safetensors'), text_classes='target', reuse=False)
    loss.setup(model, SPACE)
    ctx = make_ctx(model)
    ctx.text_features = model.text_features()
    v = F.normalize(bank.visual[:2], dim=-1)
    logits = v @ ctx.text_features.detach().t() / 0.01
    ref = F.cross_entropy(logits, torch.tensor([0, 1]))
    assert float(loss(ctx)) == pytest.approx(float(ref), abs=1e-4)


def test_proxy_classes_use_the_current_prompts(tmp_path, model, backbone):
    names = ['cow', 'horse', 'sheep']
    bank = make_bank(tmp_path / 'b.safetensors', names)
    loss = PrototypeDiscriminationLoss(str(tmp_path / 'b.safetensors'), reuse=False)
    loss.setup(model, LabelSpace(('tree', 'car', 'boat', 'house')))  # nothing matches: 'auto' -> proxy
    assert loss.text_classes == 'proxy'
    with torch.no_grad():
        model.prompt_learner.ctx.add_(0.3)
    ctx = make_ctx(model)
    ctx.text_features = model.text_features()
    fresh = CoOp(backbone, classnames=names)
    with torch.no_grad():
        fresh.ctx.copy_(model.prompt_learner.ctx)
        t = PromptedCLIP(backbone, fresh).text_features()
    ref = F.cross_entropy(F.normalize(bank.visual, dim=-1) @ t.t() / 0.01, torch.arange(3))
    assert float(loss(ctx)) == pytest.approx(float(ref), abs=1e-4)


def test_reused_gradient_is_the_true_gradient_at_the_initial_prompts(tmp_path, backbone):
    make_bank(tmp_path / 'b.safetensors', ['cow', 'horse', 'sheep'], embed=32)
    maple = MaPLe(backbone, classnames=NAMES)
    model = PromptedCLIP(backbone, maple)
    reused = PrototypeDiscriminationLoss(str(tmp_path / 'b.safetensors'), text_classes='proxy', reuse=True)
    exact = PrototypeDiscriminationLoss(str(tmp_path / 'b.safetensors'), text_classes='proxy', reuse=False)
    reused.setup(model, SPACE)
    exact.setup(model, SPACE)
    ctx = make_ctx(model)
    ctx.text_features = model.text_features()
    params = [p for p in maple.parameters()]
    a, b = reused(ctx), exact(ctx)
    assert float(a) == pytest.approx(float(b), abs=1e-5)
    ga = torch.autograd.grad(a, params, allow_unused=True)
    gb = torch.autograd.grad(b, params, allow_unused=True)
    for x, y in zip(ga, gb):
        assert (x is None and y is None) or torch.allclose(x, y, atol=1e-6)
    assert any(x is not None and x.abs().sum() > 0 for x in ga)


@pytest.mark.parametrize('target', ['hard', 'soft'])
def test_sample_to_prototype_by_hand(tmp_path, model, target):
    bank = make_bank(tmp_path / 'b.safetensors', NAMES, IDS)
    loss = PrototypeDiscriminationLoss(str(tmp_path / 'b.safetensors'), mode='sample_to_prototype', target=target,
                                       temperature=0.07)
    loss.setup(model, SPACE)
    ctx = make_ctx(model)
    g = torch.Generator().manual_seed(3)
    ctx.image_features = F.normalize(torch.randn(6, 32, generator=g), dim=-1).requires_grad_(True)
    idx = [2, 4, 5, 0]
    z = ctx.image_features[idx].detach().numpy().mean(0)
    z /= np.linalg.norm(z)
    v = bank.visual.numpy()
    logp = log_softmax_np((v / np.linalg.norm(v, axis=1, keepdims=True)) @ z / 0.07)
    p_bar = torch.softmax(ctx.logits[idx].detach(), -1).mean(0).numpy()
    ref = -logp[p_bar.argmax()] if target == 'hard' else -(p_bar * logp).sum()
    value = loss(ctx)
    assert float(value) == pytest.approx(ref, abs=1e-4)
    assert torch.autograd.grad(value, ctx.image_features)[0].abs().sum() > 0


def test_sample_to_prototype_falls_back_to_text_prototypes(tmp_path, model):
    make_bank(tmp_path / 'b.safetensors', ['cow'])
    loss = PrototypeDiscriminationLoss(str(tmp_path / 'b.safetensors'), mode='sample_to_prototype')
    loss.setup(model, SPACE)
    assert loss.sample_prototypes == 'text'
    with torch.no_grad():
        assert torch.allclose(loss.class_prototypes, model.text_features())


def test_bad_options(tmp_path):
    with pytest.raises(ValueError, match="mode='contrast'"):
        PrototypeDiscriminationLoss(mode='contrast')
    with pytest.raises(ValueError, match='temperature'):
        PrototypeDiscriminationLoss(temperature=0)
