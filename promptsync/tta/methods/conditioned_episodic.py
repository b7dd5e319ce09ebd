"""``ConditionedEpisodicTTA``: episodic test-time tuning of an image-conditioned learner's per-image context.

TPT+CoCoOp as azshue/TPT runs it (``tpt_classification.py`` with ``--cocoop``; ``clip/cocoop.py``): per test image,

1. the image features of every view are computed once, without gradient (CoCoOp has no visual prompts, so they are
   reused for every step and for the prediction);
2. the feature of one view (TPT: view 0, the original image) conditions the context once:
   ``c = ctx + meta_net(f)`` (``gen_ctx``) — TPT feeds the meta-net the encoder's *unnormalised* output, while CoCoOp
   trains it on normalised features (``condition_features`` chooses; the TPT configs follow TPT);
3. ``c`` ``[n_ctx, D]`` is the learnable tensor: the ``EpisodicTTA`` steps (TPT: confident-view selection, marginal
   entropy, one AdamW step, lr 5e-3) tune it, the meta-net and CoCoOp's ``ctx`` stay as they are;
4. the prediction is the original view's logits with the tuned ``c``; the next image starts from its own ``c`` (the
   reset policy must be episodic) with a fresh optimizer state, as TPT builds a new AdamW per image.

This is ``EpisodicTTA`` run on :class:`~promptsync.models.prompt_learners.cocoop.CoCoOpContext` (a plain learner
whose parameter is the context) inside a ``PromptedCLIP`` of its own, with the per-image start installed before
the adaptation: in the learner itself for one sample, in each copy's initial value for a batch (``PromptCopies``),
so both engines (``mode='fast'`` and ``'reference'``) apply, and give the same predictions (tested). The initial
text features differ per image, so ``reuse_initial_text`` is off.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from promptsync.errors import ConfigError
from promptsync.losses.base import TTALoss, WeightedLossSum
from promptsync.models.clip_classifier import PromptedCLIP
from promptsync.registry import TTA_METHODS

from .episodic import EpisodicTTA
from .prompt_sources import OwnPrompts, PromptCopies

CONDITION_FEATURES = ('unnormalized', 'normalized')


@TTA_METHODS.register_module()
class ConditionedEpisodicTTA(EpisodicTTA):
    """``EpisodicTTA``'s arguments, plus:

    Args:
        condition_view: the view whose image feature conditions the context (TPT: 0, the original image).
        condition_features: 'normalized' (the input CoCoOp's meta-net is trained on; ``steps=0`` then predicts
            exactly as CoCoOp does) | 'unnormalized' (the image encoder's output, as TPT's ``gen_ctx`` feeds it).
    """

    def __init__(self, model, losses: Sequence[Mapping[str, Any]],
                 selection: Mapping[str, Any] | None = None, optimizer: Mapping[str, Any] | None = None,
                 steps: int = 1, reset: Mapping[str, Any] | None = None, reselect_each_step: bool = False,
                 grad_scaler: Mapping[str, Any] | None = None, update: str | Mapping[str, Any] = 'joint',
                 resources: Mapping[str, Any] | None = None, hooks=None, seed: int = 0, mode: str = 'fast',
                 batch_size: int | str = 'auto', grad_views: str = 'used', reuse_initial_text: bool = False,
                 condition_view: int = 0, condition_features: str = 'normalized'):
        kwargs = dict(selection=selection, optimizer=optimizer, steps=steps, reset=reset,
                      reselect_each_step=reselect_each_step, grad_scaler=grad_scaler, update=update,
                      resources=resources, hooks=hooks, seed=seed, mode=mode, batch_size=batch_size,
                      grad_views=grad_views)
        learner = model.prompt_learner
        if not learner.conditions_on_image:
            raise ConfigError(f'ConditionedEpisodicTTA tunes the per-image context of an image-conditioned learner; '
                              f'{type(learner).__name__} is not one', where='tta.type',
                              fix="use tta.type='EpisodicTTA' (configs/_base_/tta/tpt.py) for this learner")
        if condition_features not in CONDITION_FEATURES:
            raise ConfigError(f"tta.condition_features='{condition_features}' is not one of {CONDITION_FEATURES}",
                              where='tta.condition_features')
        if not (isinstance(condition_view, int) and condition_view >= 0):
            raise ConfigError(f'tta.condition_view={condition_view!r} must be a view index >= 0',
                              where='tta.condition_view', fix='use 0 (the original image, as TPT)')
        if reuse_initial_text:
            raise ConfigError('tta.reuse_initial_text=True is not exact here: every image starts from its own '
                              'conditioned context, so there are no initial text features to reuse',
                              where='tta.reuse_initial_text', fix='leave it out or set it False')
        self._refuse_losses(losses)
        if dict(reset or dict(type='EpisodicReset')).get('type') != 'EpisodicReset':
            raise ConfigError(f"tta.reset={dict(reset)} carries a context from one image to the next, but every image's "
                              'context is conditioned anew on that image', where='tta.reset',
                              fix="use tta.reset=dict(type='EpisodicReset')")
        self.condition_view, self.condition_features = condition_view, condition_features
        self.conditional_model = model              # the CoCoOp model (its meta-net and ctx stay as they are)
        tuned = PromptedCLIP(model.backbone, learner.context_learner(), text_chunk_size=model.text_chunk_size,
                             image_chunk_size=model.image_chunk_size)
        tuned.set_label_space(model.label_space)
        tuned.prompt_checkpoint = model.prompt_checkpoint
        super().__init__(tuned, losses, reuse_initial_text=False, **kwargs)
        self.n_conditioned = 0

    @staticmethod
    def _refuse_losses(losses) -> None:
        """Losses that read vision tokens or set themselves up from class prompts without an image are refused."""
        terms = WeightedLossSum(losses).terms
        bad = [(name, 'vision tokens') for name, _, loss in terms if getattr(loss, 'vision_layers', ())]
        bad += [(name, 'prototypes / class prompts at setup') for name, _, loss in terms
                if getattr(type(loss), 'setup', TTALoss.setup) is not TTALoss.setup]
        if bad:
            raise ConfigError('ConditionedEpisodicTTA supports losses on the views\' logits and features only; '
                              + ', '.join(f'{n} reads {what}' for n, what in bad)
                              + ', which an image-conditioned context does not define before the image is seen',
                              where='tta.losses', fix="use losses such as dict(type='MarginalEntropyLoss') (TPT)")

    # ------------------------------------------------------------------ conditioning
    def condition(self, ctxs) -> torch.Tensor:
        """Cache every view's image features (one no-grad pass) and return the conditioned contexts
        ``[B, n_ctx, D]`` (``ctx + meta_net(f)`` of each sample's ``condition_view``)."""
        model, cocoop = self.model, self.conditional_model.prompt_learner
        counts = [ctx.n_views for ctx in ctxs]
        if any(self.condition_view >= n for n in counts):
            raise ConfigError(f'tta.condition_view={self.condition_view} but a sample has {min(counts)} views',
                              where='tta.condition_view', fix='use 0 (the original image)')
        with torch.no_grad(), self.timer('vision_forward'):
            raw = model.image_features(torch.cat([ctx.views for ctx in ctxs]), normalize=False)
            feats = F.normalize(raw, dim=-1)
            starts = torch.tensor([0] + counts[:-1]).cumsum(0) + self.condition_view
            cond = raw[starts] if self.condition_features == 'unnormalized' else feats[starts]
            contexts = cocoop.context(cond).detach()
        for ctx, part, c in zip(ctxs, feats.split(counts), contexts):
            ctx.extra['cached_image_features'] = part
            ctx.extra['conditioned_context'] = c
        self.n_conditioned += len(ctxs)
        return contexts

    def _install(self, contexts: torch.Tensor) -> None:
        """One sample: its conditioned context into the learner (the episodic reset puts the bound state back)."""
        with torch.no_grad():
            self.learner.ctx.copy_(contexts[0])
        self.at_initial = False

    # ------------------------------------------------------------------ samples
    def process_sample(self, views: torch.Tensor, label: int, index: int, path: str = ''):
        ctx = self._context(views, label, index)
        self.hooks.call('before_sample', ctx)
        self._install(self.condition([ctx]))
        self.adapt(ctx)
        return self._finish(ctx, self.predict(ctx), path)

    def process_group(self, views: torch.Tensor, labels, indices, paths):
        ctxs = [self._context(views[b], labels[b], indices[b]) for b in range(len(labels))]
        for ctx in ctxs:
            self.hooks.call('before_sample', ctx)
        contexts = self.condition(ctxs)
        if len(ctxs) == 1:
            self._install(contexts)
            source = OwnPrompts(self)
        else:
            source = PromptCopies(self, len(ctxs), initial={'ctx': contexts})
        self.engine.adapt(ctxs, source)
        logits = self.engine.predict(ctxs, source)
        return [self._finish(ctx, z, path) for ctx, z, path in zip(ctxs, logits, paths)]

    def initial_text_features(self) -> torch.Tensor:
        raise ConfigError('ConditionedEpisodicTTA has no initial text features shared by the images (each image '
                          'starts from its own conditioned context)', where='custom_hooks',
                          fix='leave AdaptationRecorder out of ConditionedEpisodicTTA runs')

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        out.update(conditioned=dict(view=self.condition_view, features=self.condition_features,
                                    samples=self.n_conditioned))
        return out
