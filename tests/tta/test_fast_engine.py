"""The fast engine (exact shortcuts, samples adapted together) against the reference loop, on random weights.

For TPT, MaPLe+TPT, PromptAlign, PromptSync and TPT on IVLP / VPT prompts with 1 and 2 steps: the same selected
views, the same loss values, top-1 equal and logits within 1e-4 (fp32) — reference = ``mode='reference'`` with the
full-context text encoder; fast = the defaults, one sample at a time and three at a time (so a batch of 4 runs as a
copy group of 3 plus one sample on the learner itself). The learning rate is large enough that the adaptation moves
every prediction, so a wrong gradient (a view missing, a copy mixed with another) changes the logits far beyond the
tolerance.
"""
import pytest
import torch

from promptsync.errors import ConfigError
from promptsync.hooks import Hook, HookList
from promptsync.losses import TTALoss
from promptsync.models import PromptedCLIP
from promptsync.models.prompt_learners import IVLP, VPT, CoOp, MaPLe
from promptsync.registry import LOSSES
from promptsync.tta.methods import EpisodicTTA

from ..conftest import CLASSES
from ..losses.helpers import make_bank

ENTROPY = dict(type='MarginalEntropyLoss', weight=1.0)
ALIGN = dict(type='DistributionAlignmentLoss', weight=100.0 / 3, layers=(0, 1))
CLASS_ALIGN = dict(type='ClassAwarePrototypeAlignmentLoss', weight=100.0 / 3, layers=(0, 1))
DISCRIM = dict(type='PrototypeDiscriminationLoss', weight=1.0)
METHODS = {'tpt': ('coop', [ENTROPY]), 'maple_tpt': ('maple', [ENTROPY]),
           'promptalign': ('maple', [ENTROPY, ALIGN]), 'promptsync': ('maple', [ENTROPY, CLASS_ALIGN, DISCRIM]),
           'ivlp_tpt': ('ivlp', [ENTROPY]), 'vpt_tpt': ('vpt', [ENTROPY])}
LEARNERS = {'maple': lambda b: MaPLe(b, classnames=CLASSES),
            'coop': lambda b: CoOp(b, ctx_init='a photo of a', classnames=CLASSES),
            'ivlp': lambda b: IVLP(b, depth_text=3, depth_vision=3, classnames=CLASSES),
            'vpt': lambda b: VPT(b, n_ctx_vision=4, depth=3, classnames=CLASSES)}
N_SAMPLES, N_VIEWS = 4, 8


@LOSSES.register_module(force=True)
class _AllViewsEntropy(TTALoss):
    """A user loss that reads every view and does not say which views it reads (so: all of them)."""

    batch_safe = True

    def forward(self, ctx):
        logp = ctx.logits.float().log_softmax(-1)
        return -(logp.exp() * logp).sum(-1).mean()


class Record(Hook):
    batch_safe = True

    def __init__(self):
        self.selected, self.losses, self.nan_rows = {}, {}, {}

    def after_selection(self, runner, ctx):
        self.selected[ctx.index] = ctx.selected.tolist()

    def after_loss(self, runner, ctx):
        self.losses[(ctx.index, ctx.step, ctx.extra['phase'])] = float(ctx.loss.detach())

    def after_forward(self, runner, ctx):
        if ctx.step > 0:
            self.nan_rows[ctx.index] = (torch.isnan(ctx.logits).all(dim=1).nonzero().flatten().tolist(),
                                        None if ctx.computed_views is None else ctx.computed_views.tolist())


def _batch():
    g = torch.Generator().manual_seed(7)
    return dict(views=torch.randn(N_SAMPLES, N_VIEWS, 3, 32, 32, generator=g), label=torch.arange(N_SAMPLES) % 4,
                index=torch.arange(10, 10 + N_SAMPLES), path=[f'img{i}' for i in range(N_SAMPLES)])


@pytest.fixture(scope='module')
def bank_file(tmp_path_factory):
    path = tmp_path_factory.mktemp('bank') / 'bank.safetensors'
    names = [c.replace('_', ' ') for c in CLASSES]
    make_bank(path, CLASSES, layers=(0, 1), shape=(19, 64), embed=32, seed=3)
    return str(path), names


def run(backbone, bank, method, mode, batch_size=1, steps=1, reference_text=False, losses=None, **kw):
    learner_kind, default_losses = METHODS[method]
    torch.manual_seed(11)
    learner = LEARNERS[learner_kind](backbone)
    backbone.truncate_text = not reference_text
    record = Record()
    tta = EpisodicTTA(PromptedCLIP(backbone, learner), losses=losses or default_losses,
                      selection=dict(type='ConfidenceSelection', ratio=0.25), optimizer=dict(type='AdamW', lr=0.05),
                      steps=steps, mode=mode, batch_size=batch_size, hooks=HookList([record]),
                      resources=dict(prototypes=bank[0]), **kw)
    try:
        results = tta.process_batch(_batch())
    finally:
        backbone.truncate_text = True
    return torch.stack([r.logits for r in results]), record, tta


def assert_same(ref, fast):
    (ref_logits, ref_rec, _), (logits, rec, _) = ref, fast
    assert rec.selected == ref_rec.selected
    assert rec.losses.keys() == ref_rec.losses.keys()
    for key, value in ref_rec.losses.items():
        assert rec.losses[key] == pytest.approx(value, rel=1e-4, abs=1e-5), key
    assert torch.equal(logits.argmax(-1), ref_logits.argmax(-1))
    assert (logits - ref_logits).abs().max() < 1e-4


@pytest.mark.parametrize('steps', [1, 2])
@pytest.mark.parametrize('method', sorted(METHODS))
def test_fast_engine_equals_the_reference_loop(backbone, bank_file, method, steps):
    ref = run(backbone, bank_file, method, 'reference', steps=steps, reference_text=True)
    zero_shot = run(backbone, bank_file, method, 'reference', steps=0)[0]
    assert (ref[0] - zero_shot).abs().max() > 0.05  # the adaptation moves the logits: the comparison can fail
    for batch_size in (1, 3):
        fast = run(backbone, bank_file, method, 'fast', batch_size=batch_size, steps=steps)
        assert_same(ref, fast)
        assert fast[2].engine_summary()['mode'] == 'fast'


@pytest.mark.parametrize('variant', [dict(update='alternating'), dict(reselect_each_step=True, steps=2),
                                     dict(losses=[ENTROPY, dict(CLASS_ALIGN, detach_weights=False, top_k=2)]),
                                     dict(losses=[ENTROPY, dict(DISCRIM, mode='sample_to_prototype')]),
                                     dict(losses=[dict(type='_AllViewsEntropy')])])
def test_fast_engine_equals_the_reference_loop_in_other_settings(backbone, bank_file, variant):
    variant = dict(variant)
    steps = variant.pop('steps', 1)
    ref = run(backbone, bank_file, 'promptsync', 'reference', steps=steps, reference_text=True, **variant)
    for batch_size in (1, 3):
        assert_same(ref, run(backbone, bank_file, 'promptsync', 'fast', batch_size=batch_size, steps=steps, **variant))


def test_after_the_selection_step_only_the_read_views_are_computed(backbone, bank_file):
    _, record, _ = run(backbone, bank_file, 'maple_tpt', 'fast', batch_size=3, steps=2)
    for index, (nan_rows, computed) in record.nan_rows.items():
        selected = record.selected[index]
        assert sorted(computed) == sorted(selected)
        assert nan_rows == [v for v in range(N_VIEWS) if v not in selected]


def test_a_loss_reading_every_view_gets_every_view(backbone, bank_file):
    _, record, _ = run(backbone, bank_file, 'maple_tpt', 'fast', steps=2, losses=[dict(type='_AllViewsEntropy')])
    assert all(nan == [] and computed is None for nan, computed in record.nan_rows.values())


class Editor(Hook):
    """Changes the logits the selection sees: the fast engine cannot honour that, so the reference loop runs."""

    def after_forward(self, runner, ctx):
        ctx.logits = ctx.logits * 2


def test_unsafe_hook_or_reset_policy_falls_back_and_says_why(backbone, bank_file):
    torch.manual_seed(0)
    model = PromptedCLIP(backbone, MaPLe(backbone, classnames=CLASSES))
    tta = EpisodicTTA(model, losses=[ENTROPY], hooks=HookList([Editor()]))
    summary = tta.engine_summary()
    assert summary['mode'] == 'reference' and 'Editor' in summary['reference_because'][0]
    online = EpisodicTTA(model, losses=[ENTROPY], reset=dict(type='NoReset'))
    reasons = online.engine_summary()['one_at_a_time_because']
    assert online.engine_summary()['mode'] == 'fast' and 'NoReset' in reasons[0]
    with pytest.raises(ConfigError, match='cannot adapt samples together exactly.*NoReset'):
        EpisodicTTA(model, losses=[ENTROPY], reset=dict(type='NoReset'), batch_size=2)
    @LOSSES.register_module(force=True)
    class _Undeclared(TTALoss):
        def forward(self, ctx):
            return ctx.logits.sum()
    undeclared = EpisodicTTA(model, losses=[dict(type='_Undeclared')])
    assert "['_Undeclared'] do not declare batch_safe" in undeclared.engine_summary()['one_at_a_time_because'][0]
    sgd_lbfgs = EpisodicTTA(model, losses=[ENTROPY], optimizer=dict(type='LBFGS', lr=0.1))
    assert any('LBFGS' in r for r in sgd_lbfgs.engine_summary()['one_at_a_time_because'])
    with pytest.raises(ConfigError, match="tta.mode='quick'"):
        EpisodicTTA(model, losses=[ENTROPY], mode='quick')
    with pytest.raises(ConfigError, match="tta.reuse_initial_text must be True or False, got 'maybe'"):
        EpisodicTTA(model, losses=[ENTROPY], reuse_initial_text='maybe')


def test_online_reset_policy_runs_fast_one_sample_at_a_time_and_matches(backbone, bank_file):
    """NoReset carries the prompts along the stream: the fast engine adapts the learner itself, in order."""
    ref = run(backbone, bank_file, 'maple_tpt', 'reference', reference_text=True, reset=dict(type='NoReset'))
    fast = run(backbone, bank_file, 'maple_tpt', 'fast', batch_size='auto', reset=dict(type='NoReset'))
    assert_same(ref, fast)


class Overflow(Hook):
    """Makes one sample's loss infinite, as an fp16 overflow would."""
    batch_safe = True

    def after_loss(self, runner, ctx):
        if ctx.index == 11:
            ctx.loss = ctx.loss * float('inf')


@pytest.mark.parametrize('optimizer', [dict(type='AdamW', lr=0.05), dict(type='SGD', lr=20.0)])
def test_grad_scaler_skips_the_overflowed_copy_only(backbone, bank_file, optimizer):
    """Under fp16 autocast each sample alone skips its step when its gradients overflow; copies adapted together
    skip exactly that copy's step. (A CPU grad scaler stands in for the CUDA one: the arithmetic is the same; SGD
    because Adam's step does not see a missing unscale.)"""
    def run_scaled(mode, batch_size):
        torch.manual_seed(11)
        model = PromptedCLIP(backbone, MaPLe(backbone, classnames=CLASSES))
        record = Record()
        tta = EpisodicTTA(model, losses=[ENTROPY, ALIGN], selection=dict(type='ConfidenceSelection', ratio=0.25),
                          optimizer=optimizer, mode=mode, batch_size=batch_size,
                          hooks=HookList([record, Overflow()]), resources=dict(prototypes=bank_file[0]))
        tta.scaler = torch.amp.GradScaler('cpu', enabled=True, init_scale=1000.0)
        tta.initial_loss_scale = 1000.0
        tta.reset_policy.bind(tta.learner, tta.optimizer, tta.scaler)
        return torch.stack([r.logits for r in tta.process_batch(_batch())]), record, tta

    ref = run_scaled('reference', 1)
    zero_shot = run(backbone, bank_file, 'promptalign', 'reference', steps=0)[0]
    assert torch.allclose(ref[0][1], zero_shot[1], atol=1e-5)  # the overflowed sample kept its initial prompts
    assert (ref[0][0] - zero_shot[0]).abs().max() > 0.05
    fast = run_scaled('fast', 4)
    assert fast[2].engine_summary()['one_at_a_time_because'] == []
    assert_same(ref, fast)
