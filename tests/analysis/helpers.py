"""Tiny methods for the recorder tests, and an independent way to get the features of a learner state."""
import torch

from promptsync.hooks import Hook, HookList
from promptsync.hooks.adaptation_recorder import AdaptationRecorder
from promptsync.models import PromptedCLIP
from promptsync.models.prompt_learners import CoOp, MaPLe
from promptsync.tta.methods import EpisodicTTA

from ..conftest import CLASSES

N_SAMPLES, N_VIEWS = 6, 8
LR = 0.1  # large enough that one step moves several predictions of the random-weight model


def make_learner(backbone, kind):
    torch.manual_seed(3)  # the same initial prompts for every method of a test
    return MaPLe(backbone, classnames=CLASSES) if kind == 'maple' else CoOp(backbone, classnames=CLASSES)


def make_method(backbone, kind='maple', steps=1, mode='reference', hooks=(), **kw):
    model = PromptedCLIP(backbone, make_learner(backbone, kind))
    args = dict(losses=[dict(type='MarginalEntropyLoss')], selection=dict(type='ConfidenceSelection', ratio=0.25),
                optimizer=dict(type='AdamW', lr=LR), steps=steps, mode=mode)
    args.update(kw)
    return EpisodicTTA(model, hooks=HookList(hooks), **args)


def recorded(backbone, kind='maple', steps=1, mode='reference', labels=None, extra_hooks=(), **kw):
    """``(recorder, method, results)`` of one batch of ``N_SAMPLES`` with the recorder attached."""
    recorder = AdaptationRecorder()
    method = make_method(backbone, kind, steps, mode, hooks=[*extra_hooks, recorder], **kw)
    recorder.attach(method)
    results = method.process_batch(make_batch(labels))
    return recorder, method, results


def make_batch(labels=None, n=N_SAMPLES):
    g = torch.Generator().manual_seed(0)
    labels = list(range(n)) if labels is None else list(labels)
    return dict(views=torch.randn(n, N_VIEWS, 3, 32, 32, generator=g), label=torch.tensor(labels) % len(CLASSES),
                index=torch.arange(10, 10 + n))


class Snapshots(Hook):
    """The learner's tensors when a sample starts and when it is predicted (reference loop: the learner's own)."""

    def __init__(self):
        self.before, self.after = {}, {}

    def before_sample(self, runner, ctx):
        self.before[ctx.index] = ctx.model.prompt_learner.snapshot()

    def after_predict(self, runner, ctx, result):
        self.after[ctx.index] = ctx.model.prompt_learner.snapshot()


def features_of(backbone, kind, state, views):
    """``(f [E], T [C, E], logits [C])`` of view 0 for a learner holding ``state``: a fresh model, no TTA code."""
    learner = make_learner(backbone, kind)
    learner.restore(state)
    model = PromptedCLIP(backbone, learner)
    with torch.no_grad():
        f = model.image_features(views[:1])[0]
        T = model.text_features()
        return f, T, model.logits(f[None], T)[0]
