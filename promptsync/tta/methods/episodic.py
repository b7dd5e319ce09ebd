"""``EpisodicTTA``: the test-time prompt-tuning loop shared by TPT, PromptAlign and PromptSync.

Per test sample: views -> forward -> confident-view selection -> weighted sum of registered losses ->
optimizer step(s) on the prompt learner -> prediction on the original view -> reset policy. Every
stage is a registered piece chosen in the config, and hooks see every stage.

Gradients are enabled inside the adaptation step even when the caller runs under ``no_grad``. When
the learner has no visual prompts and no loss needs vision tokens, the image features of the views
do not depend on the prompts and are computed once per sample, without a graph.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from promptsync.losses.base import WeightedLossSum
from promptsync.registry import OPTIMIZERS, RESET_POLICIES, TTA_METHODS, VIEW_SELECTORS
from promptsync.tta.update_schedules import build_update_schedule
from promptsync.tta.context import SampleResult, TTAContext
from promptsync.utils.seeding import SampleRNG, derive_seed

from .base import TTAMethod


@TTA_METHODS.register_module()
class EpisodicTTA(TTAMethod):
    """Args:
        losses: ``[dict(type=..., weight=...), ...]`` from ``LOSSES``.
        selection: a ``VIEW_SELECTORS`` config (TPT: 10% lowest-entropy views).
        optimizer: a ``OPTIMIZERS`` config without params (TPT: AdamW lr 5e-3).
        steps: optimizer steps per sample (0 = predict with the initial prompts).
        reset: a ``RESET_POLICIES`` config (episodic: reset after every sample).
        reselect_each_step: recompute the selection at every step (TPT keeps the first step's views).
        grad_scaler: ``GradScaler`` arguments, used only under fp16 autocast (TPT: init_scale=1000).
        update: the update schedule (``UPDATE_SCHEDULES``): which prompt branch each phase of a step moves —
            'joint' (all learnable tensors), 'text', 'vision', 'alternating' (a text phase then a vision phase,
            each with its own forward), or ``dict(type=<your schedule>)``; see
            :mod:`promptsync.tta.update_schedules`.
        resources: the run's checked files by role (``'prototypes'``), handed to the losses' ``setup``; the test
            classes come from ``model.label_space``.
    """

    def __init__(self, model, losses: Sequence[Mapping[str, Any]],
                 selection: Mapping[str, Any] | None = None, optimizer: Mapping[str, Any] | None = None,
                 steps: int = 1, reset: Mapping[str, Any] | None = None, reselect_each_step: bool = False,
                 grad_scaler: Mapping[str, Any] | None = None, update: str | Mapping[str, Any] = 'joint',
                 resources: Mapping[str, Any] | None = None, hooks=None, seed: int = 0):
        super().__init__(model, hooks, seed, resources)
        if steps < 0:
            raise ValueError(f'steps must be >= 0, got {steps}')
        self.learner = model.prompt_learner
        params = [p for p in self.learner.parameters() if p.requires_grad]
        if not params:
            raise ValueError(f'{type(self.learner).__name__} has no learnable parameters, so there is nothing to '
                             "adapt; use a CoOp/MaPLe prompt learner, or tta=dict(type='ZeroShot')")
        self.loss = WeightedLossSum(losses)
        self.schedule = build_update_schedule(update)
        self.phases = self.schedule.phases(self.learner, params)
        self.update = update if isinstance(update, str) else dict(update).get('type')
        self.selector = VIEW_SELECTORS.build(dict(selection or dict(type='ConfidenceSelection', ratio=0.1)))
        self.optimizer = OPTIMIZERS.build(dict(optimizer or dict(type='AdamW', lr=5e-3)), default_args=dict(params=params))
        self.steps = steps
        self.reselect_each_step = reselect_each_step
        fp16 = model.backbone.precision == 'amp' and self.device.type == 'cuda'
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=fp16, **dict(grad_scaler or {}))
        self.reset_policy = RESET_POLICIES.build(dict(reset or dict(type='EpisodicReset')))
        self.loss.setup(model, self.resources)
        self.reset_policy.bind(self.learner, self.optimizer, self.scaler)
        self.samples_seen = 0

    @property
    def caches_image_features(self) -> bool:
        return not self.learner.has_vision_prompts and not self.loss.vision_layers

    # ------------------------------------------------------------------ stages
    def forward(self, ctx: TTAContext, cached_images: torch.Tensor | None) -> None:
        """Prompts -> image/text features -> logits of every view (with grad)."""
        model = self.model
        prompts = model.prompts()
        layers = self.loss.vision_layers
        if cached_images is not None:
            images = cached_images
        elif layers:
            with model.backbone.taps('vision', layers) as taps:
                images = model.image_features(ctx.views, prompts)
            ctx.vision_tokens = taps.tokens()
        else:
            images = model.image_features(ctx.views, prompts)
        text = model.text_features(prompts)
        ctx.prompts, ctx.image_features, ctx.text_features = prompts, images, text
        ctx.logits = model.logits(images, text)

    def adapt(self, ctx: TTAContext) -> None:
        cached = None
        if self.caches_image_features:
            with torch.no_grad():
                cached = self.model.image_features(ctx.views)
            ctx.extra['cached_image_features'] = cached
        with torch.enable_grad():
            for step in range(self.steps):
                for phase, frozen in self.phases:
                    ctx.step = step
                    ctx.extra['phase'] = phase
                    self.forward(ctx, cached)
                    self.hooks.call('after_forward', ctx)
                    if ctx.selected is None or self.reselect_each_step:
                        ctx.selected = self.selector(ctx.logits)
                        self.hooks.call('after_selection', ctx)
                    ctx.loss, ctx.loss_terms = self.loss(ctx)
                    self.hooks.call('after_loss', ctx)
                    self.optimizer.zero_grad(set_to_none=True)
                    self.scaler.scale(ctx.loss).backward()
                    for p in frozen:  # this phase leaves these tensors (and their optimizer state) alone
                        p.grad = None
                    self.scaler.step(self.optimizer)
                    self.scaler.update()
                    self.hooks.call('after_step', ctx)

    @torch.no_grad()
    def predict(self, ctx: TTAContext) -> torch.Tensor:
        """Logits ``[C]`` of the original view (view 0) with the adapted prompts."""
        prompts = self.model.prompts()
        cached = ctx.extra.get('cached_image_features')
        image = cached[:1] if cached is not None else self.model.image_features(ctx.views[:1], prompts)
        return self.model.logits(image, self.model.text_features(prompts))[0]

    def process_sample(self, views: torch.Tensor, label: int, index: int, path: str = '') -> SampleResult:
        rng = SampleRNG.for_sample(derive_seed(self.seed, 1), index)
        ctx = TTAContext(index=index, label=label, views=views.to(self.device), model=self.model, rng=rng)
        self.hooks.call('before_sample', ctx)
        self.adapt(ctx)
        result = SampleResult(index=index, label=label, logits=self.predict(ctx).float().cpu(), path=path,
                              loss_terms=dict(ctx.loss_terms))
        self.hooks.call('after_predict', ctx, result)
        self.samples_seen += 1
        self.reset_policy.after_sample(self.samples_seen)
        self.hooks.call('after_sample', ctx, result)
        return result

    def process_batch(self, batch) -> list[SampleResult]:
        views, labels, indices, paths = self.unpack(batch)
        return [self.process_sample(views[b], labels[b], indices[b], paths[b]) for b in range(len(labels))]

    def summary(self) -> dict[str, Any]:
        return dict(resets=self.reset_policy.n_resets, samples_adapted=self.samples_seen, update=self.update,
                    cached_image_features=self.caches_image_features, losses=self.loss.summary())
