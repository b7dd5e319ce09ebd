"""The episodic TTA engine against an independent hand computation of one TPT step, and its invariants."""
import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from promptsync.losses import TTALoss, marginal_entropy
from promptsync.models import PromptedCLIP
from promptsync.models.prompt_learners import CoOp, MaPLe, TemplatePrompts
from promptsync.registry import LOSSES
from promptsync.hooks import HookList, TTAHook
from promptsync.tta.methods import EpisodicTTA

from ..conftest import CLASSES

LR, WD = 0.05, 0.01


def make_tpt(backbone, learner=None, hooks=(), **kw):
    learner = learner or CoOp(backbone, ctx_init='a photo of a', classnames=CLASSES)
    model = PromptedCLIP(backbone, learner)
    args = dict(losses=[dict(type='MarginalEntropyLoss')], selection=dict(type='ConfidenceSelection', ratio=0.25),
                optimizer=dict(type='AdamW', lr=LR, weight_decay=WD), steps=1)
    args.update(kw)
    return EpisodicTTA(model, hooks=HookList(hooks), **args)


def views(seed=0, n=8):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g)


class Capture(TTAHook):
    def __init__(self):
        self.after_step_ctx = []
        self.selections = 0
        self.grads = {}

    def after_selection(self, runner, ctx):
        self.selections += 1

    def after_step(self, runner, ctx):
        learner = ctx.model.prompt_learner
        self.after_step_ctx.append(learner.snapshot())
        self.grads = {n: (p.grad is not None and float(p.grad.abs().sum()) > 0) for n, p in learner.named_parameters()}
        self.loss = float(ctx.loss.detach())
        self.selected = ctx.selected.clone()


def naive_text_features(backbone, ctx_vectors):
    """Hand-built CoOp text encoder: slice the context into 'a photo of a {c}.' and run the blocks."""
    m = backbone.model
    ids = backbone.tokenize([f"a photo of a {c.replace('_', ' ')}." for c in CLASSES])
    emb = m.token_embedding(ids)
    x = torch.cat([emb[:, :1], ctx_vectors.expand(len(CLASSES), -1, -1), emb[:, 5:]], dim=1)
    x = x + m.positional_embedding
    for blk in m.transformer.resblocks:
        x = blk(x, attn_mask=m.attn_mask)
    x = m.ln_final(x)
    return F.normalize(x[torch.arange(len(CLASSES)), ids.argmax(-1)] @ m.text_projection, dim=-1)


def test_one_tpt_step_matches_hand_computation(backbone):
    cap = Capture()
    tpt = make_tpt(backbone, hooks=[cap])
    ctx0 = tpt.learner.ctx.detach().clone()
    v = views()
    with torch.no_grad():  # the engine must enable gradients itself
        result = tpt.process_sample(v, label=1, index=0)

    # --- independent computation
    p = ctx0.clone().requires_grad_(True)
    with torch.no_grad():
        img = F.normalize(backbone.model.encode_image(v), dim=-1)
    scale = backbone.model.logit_scale.exp()
    logits = scale * img @ naive_text_features(backbone, p).t()
    probs = logits.softmax(-1).detach().numpy()
    entropy = -(probs * np.log(probs)).sum(-1)
    chosen = np.argsort(entropy, kind='stable')[:2]          # 25% of 8 views
    pbar = logits[torch.as_tensor(chosen)].softmax(-1).mean(0)
    loss = -(pbar * pbar.log()).sum()
    loss.backward()
    g = p.grad
    # AdamW, first step: m_hat = g, v_hat = g^2
    expected = ctx0 * (1 - LR * WD) - LR * g / (g.abs() + 1e-8)

    assert sorted(cap.selected.tolist()) == sorted(chosen.tolist())
    assert cap.loss == pytest.approx(float(loss.detach()), abs=1e-5)
    assert torch.allclose(cap.after_step_ctx[0]['ctx'], expected, atol=1e-6)
    with torch.no_grad():
        pred_logits = scale * img[:1] @ naive_text_features(backbone, expected).t()
    assert torch.allclose(result.logits, pred_logits[0], atol=1e-4)


def test_marginal_entropy_hand_value():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.5, 0.5, 0.0]])
    p = torch.softmax(logits, -1).mean(0).numpy()
    assert float(marginal_entropy(logits)) == pytest.approx(float(-(p * np.log(p)).sum()), abs=1e-6)
    # one very confident view: entropy near 0, finite
    assert 0 <= float(marginal_entropy(torch.tensor([[1e4, -1e4, 0.0]]))) < 1e-6


def test_only_prompts_change_and_reset_is_bit_exact(backbone):
    cap = Capture()
    tpt = make_tpt(backbone, hooks=[cap])
    frozen = {k: v.clone() for k, v in backbone.state_dict().items()}
    init = tpt.learner.snapshot()
    tpt.process_sample(views(1), label=0, index=3)
    assert not torch.equal(cap.after_step_ctx[0]['ctx'], init['ctx'])      # it did adapt
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, frozen[k]), f'frozen weight {k} changed'
    for k, v in tpt.learner.state_dict().items():
        assert torch.equal(v, init[k])                                      # reset, bit for bit
    assert tpt.optimizer.state_dict()['state'] == {}                        # fresh AdamW moments
    assert tpt.reset_policy.n_resets == 1


def test_no_reset_keeps_adapting(backbone):
    tpt = make_tpt(backbone, reset=dict(type='NoReset'))
    init = tpt.learner.snapshot()
    tpt.process_sample(views(1), label=0, index=0)
    after_one = tpt.learner.snapshot()
    assert not torch.equal(after_one['ctx'], init['ctx'])
    assert len(tpt.optimizer.state_dict()['state']) == 1
    tpt.process_sample(views(2), label=0, index=1)
    assert not torch.equal(tpt.learner.snapshot()['ctx'], after_one['ctx'])


def test_episodic_results_do_not_depend_on_history(backbone):
    a = make_tpt(backbone)
    first = a.process_sample(views(5), 0, 5).logits
    b = make_tpt(backbone)
    b.process_sample(views(6), 0, 6)
    b.process_sample(views(7), 0, 7)
    assert torch.equal(b.process_sample(views(5), 0, 5).logits, first)


def test_hook_can_change_the_selection(backbone):
    class OriginalOnly(TTAHook):
        def after_selection(self, runner, ctx):
            ctx.selected = torch.tensor([0])
    cap = Capture()
    tpt = make_tpt(backbone, hooks=[OriginalOnly(), cap])
    v = views(2)
    tpt.process_sample(v, 0, 0)
    with torch.no_grad():
        model = tpt.model
        logits0 = model.logits(model.image_features(v[:1]), model.text_features())
    assert cap.selected.tolist() == [0]
    assert cap.loss == pytest.approx(float(marginal_entropy(logits0)), abs=1e-5)


def test_selection_is_kept_across_steps_unless_asked(backbone):
    cap = Capture()
    make_tpt(backbone, hooks=[cap], steps=3).process_sample(views(), 0, 0)
    assert cap.selections == 1 and len(cap.after_step_ctx) == 3
    cap2 = Capture()
    make_tpt(backbone, hooks=[cap2], steps=3, reselect_each_step=True).process_sample(views(), 0, 0)
    assert cap2.selections == 3


def test_zero_steps_predicts_with_initial_prompts(backbone):
    tpt = make_tpt(backbone, steps=0)
    v = views(3)
    out = tpt.process_sample(v, 0, 0).logits
    with torch.no_grad():
        ref = tpt.model(v[:1])[0]
    assert torch.allclose(out, ref, atol=1e-6)


@LOSSES.register_module(force=True)
class _ZeroTapLoss(TTALoss):
    """Needs vision layer 0 (forces the non-cached path) and contributes nothing."""
    vision_layers = (0,)

    def forward(self, ctx):
        self.seen_shape = tuple(ctx.vision_tokens[0].shape)
        return 0.0 * ctx.vision_tokens[0].sum()


def test_cached_and_uncached_image_paths_agree(backbone):
    cached = make_tpt(backbone)
    assert cached.caches_image_features
    tapped = make_tpt(backbone, losses=[dict(type='MarginalEntropyLoss'), dict(type='_ZeroTapLoss')])
    assert not tapped.caches_image_features
    v = views(4)
    a = cached.process_sample(v, 0, 0).logits
    b = tapped.process_sample(v, 0, 0).logits
    assert torch.allclose(a, b, atol=1e-5)
    assert tapped.loss.terms[1][2].seen_shape == (8, 17, backbone.vision_width)


def test_maple_gradients_reach_both_branches(backbone):
    cap = Capture()
    maple = MaPLe(backbone, n_ctx=2, depth=3, classnames=CLASSES)
    tpt = make_tpt(backbone, learner=maple, hooks=[cap])
    assert not tpt.caches_image_features
    frozen = {k: v.clone() for k, v in backbone.state_dict().items()}
    tpt.process_sample(views(), 0, 0)
    assert all(cap.grads.values()), cap.grads
    assert set(cap.grads) == set(dict(maple.named_parameters()))
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, frozen[k])


def test_template_prompts_cannot_be_adapted(backbone):
    with pytest.raises(ValueError, match='nothing to adapt'):
        make_tpt(backbone, learner=TemplatePrompts(backbone, 'single', CLASSES))


def test_process_batch_equals_samples_one_by_one(backbone):
    tpt = make_tpt(backbone)
    batch = dict(views=torch.stack([views(8), views(9)]), label=torch.tensor([0, 2]), index=torch.tensor([8, 9]),
                 path=['a', 'b'])
    batched = tpt.process_batch(batch)
    single = [make_tpt(backbone).process_sample(views(8 + i), [0, 2][i], 8 + i) for i in range(2)]
    for x, y in zip(batched, single):
        assert x.index == y.index and torch.equal(x.logits, y.logits)


def test_optimizer_state_restore_does_not_alias(backbone):
    tpt = make_tpt(backbone)
    saved = copy.deepcopy(tpt.reset_policy._optim_state)
    tpt.process_sample(views(), 0, 0)
    tpt.process_sample(views(1), 0, 1)
    assert tpt.reset_policy._optim_state == saved


@pytest.mark.parametrize('precision', ['amp_bf16', 'bf16'])
def test_low_precision_runs_close_to_fp32(precision):
    """Forward close to fp32; the adapted step stays finite (Adam's first step is sign-like, so after one step
    low precision may legitimately differ)."""
    from promptsync.models.backbones import OpenCLIP

    def run(prec, steps):
        torch.manual_seed(0)
        b = OpenCLIP('ps-tiny-vit', precision=prec)
        return make_tpt(b, learner=MaPLe(b, classnames=CLASSES), steps=steps).process_sample(views(), 0, 0)
    ref, low = run('fp32', 0).logits, run(precision, 0).logits
    assert low.dtype == torch.float32 and torch.allclose(low, ref, atol=0.15)
    adapted = run(precision, 1)
    assert torch.isfinite(adapted.logits).all() and np.isfinite(adapted.loss_terms['MarginalEntropyLoss'])
