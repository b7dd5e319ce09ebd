"""``EpisodicTTA``: the test-time prompt-tuning loop shared by TPT, PromptAlign and PromptSync.

Per test sample: views -> forward -> confident-view selection -> weighted sum of registered losses ->
optimizer step(s) on the prompt learner -> prediction on the original view -> reset policy. Every
stage is a registered piece chosen in the config, and hooks see every stage.

Gradients are enabled inside the adaptation step even when the caller runs under ``no_grad``. When
the learner has no visual prompts and no loss needs vision tokens, the image features of the views
do not depend on the prompts and are computed once per sample, without a graph.

Two engines compute the same thing: ``mode='reference'`` is the plain per-sample loop below (every view
forward and backward); ``mode='fast'`` (the default, :mod:`.fast_episodic`) takes the exact shortcuts and
adapts several samples at once where that is exact (:mod:`.episodic_plan`). Tests hold the two equal.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch

from promptsync.errors import ConfigError
from promptsync.losses.base import WeightedLossSum
from promptsync.registry import OPTIMIZERS, RESET_POLICIES, TTA_METHODS, VIEW_SELECTORS
from promptsync.tta.context import SampleResult, TTAContext
from promptsync.tta.timing import NO_TIMER
from promptsync.tta.update_schedules import build_update_schedule
from promptsync.utils.config import flag
from promptsync.utils.logging import get_logger
from promptsync.utils.seeding import SampleRNG, derive_seed

from .base import TTAMethod
from .episodic_plan import EnginePlan, batch_blockers, plan_engine, refuse_batch_size
from .fast_episodic import FastEpisodic
from .prompt_sources import OwnPrompts, PromptCopies

logger = get_logger('tta')
MODES = ('fast', 'reference')
GRAD_VIEWS = ('used', 'all')


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
        mode: 'fast' (exact shortcuts, batches where exact) | 'reference' (the plain per-sample loop).
        batch_size: samples adapted at once in fast mode: 'auto' (each loaded batch, ``data.batch_size``, where
            that is exact; else one at a time, recorded) or an int (an error where it cannot be exact).
        grad_views: fast mode: 'used' (gradient only through the views the losses read) | 'all'.
        reuse_initial_text: fast mode: text features of the initial prompts computed once and reused while the
            prompts are at their initial state.
    """

    def __init__(self, model, losses: Sequence[Mapping[str, Any]],
                 selection: Mapping[str, Any] | None = None, optimizer: Mapping[str, Any] | None = None,
                 steps: int = 1, reset: Mapping[str, Any] | None = None, reselect_each_step: bool = False,
                 grad_scaler: Mapping[str, Any] | None = None, update: str | Mapping[str, Any] = 'joint',
                 resources: Mapping[str, Any] | None = None, hooks=None, seed: int = 0, mode: str = 'fast',
                 batch_size: int | str = 'auto', grad_views: str = 'used', reuse_initial_text: bool = True):
        super().__init__(model, hooks, seed, resources)
        if model.prompt_learner.conditions_on_image:
            raise ConfigError(f'{type(model.prompt_learner).__name__} is image-conditioned (its prompts depend on each '
                              "image); EpisodicTTA tunes the learner's own tensors, which define no prompts alone",
                              where='tta.type',
                              fix="use tta.type='ConditionedEpisodicTTA' (configs/_base_/tta/tpt_cocoop.py: TPT's "
                                  "tuning of each image's conditioned context)")
        if steps < 0:
            raise ValueError(f'steps must be >= 0, got {steps}')
        for name, value, allowed in (('mode', mode, MODES), ('grad_views', grad_views, GRAD_VIEWS)):
            if value not in allowed:
                raise ConfigError(f"tta.{name}='{value}' is not one of {allowed}", where=f'tta.{name}')
        if batch_size != 'auto' and not (isinstance(batch_size, int) and batch_size >= 1):
            raise ConfigError(f"tta.batch_size={batch_size!r} must be 'auto' or an integer >= 1", where='tta.batch_size')
        self.mode, self.batch_size, self.grad_views = mode, batch_size, grad_views
        self.reuse_initial_text = flag(reuse_initial_text, 'tta.reuse_initial_text')
        self.learner = model.prompt_learner
        named = [(n, p) for n, p in self.learner.named_parameters() if p.requires_grad]
        self.param_names = [n for n, _ in named]
        params = self.params = [p for _, p in named]
        if not params:
            raise ValueError(f'{type(self.learner).__name__} has no learnable parameters, so there is nothing to '
                             "adapt; use a CoOp/MaPLe prompt learner, or tta=dict(type='ZeroShot')")
        self.loss = WeightedLossSum(losses)
        self.schedule = build_update_schedule(update)
        self.phases = self.schedule.phases(self.learner, params)
        self.update = update if isinstance(update, str) else dict(update).get('type')
        self.selector = VIEW_SELECTORS.build(dict(selection or dict(type='ConfidenceSelection', ratio=0.1)))
        self.optimizer_cfg = dict(optimizer or dict(type='AdamW', lr=5e-3))
        self.optimizer = OPTIMIZERS.build(dict(self.optimizer_cfg), default_args=dict(params=params))
        self.steps = steps
        self.reselect_each_step = reselect_each_step
        fp16 = model.backbone.precision == 'amp' and self.device.type == 'cuda'
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=fp16, **dict(grad_scaler or {}))
        self.initial_loss_scale = float(self.scaler.get_scale()) if self.scaler.is_enabled() else None
        self.reset_policy = RESET_POLICIES.build(dict(reset or dict(type='EpisodicReset')))
        self.loss.setup(model, self.resources)
        self.reset_policy.bind(self.learner, self.optimizer, self.scaler)
        self.samples_seen = 0
        self.at_initial = True       # the learner's tensors equal the bound (initial) state
        self.timer = NO_TIMER        # a benchmark installs an enabled StageTimer
        self.engine = FastEpisodic(self)
        self._initial_text: tuple[tuple, torch.Tensor] | None = None
        self._plans_logged: set[tuple] = set()
        if mode == 'fast' and batch_size != 'auto' and batch_size > 1 and (blockers := batch_blockers(self)):
            refuse_batch_size(batch_size, blockers)

    @property
    def caches_image_features(self) -> bool:
        return not self.learner.has_vision_prompts and not self.loss.vision_layers

    # ------------------------------------------------------------------ stages
    def forward(self, ctx: TTAContext, cached_images: torch.Tensor | None) -> None:
        """Prompts -> image/text features -> logits of every view (with grad)."""
        model = self.model
        prompts = model.prompts()
        ctx.prompt_params = list(self.params)
        layers = self.loss.vision_layers
        with self.timer('vision_forward'):
            if cached_images is not None:
                images = cached_images
            elif layers:
                with model.backbone.taps('vision', layers) as taps:
                    images = model.image_features(ctx.views, prompts)
                ctx.vision_tokens = taps.tokens()
            else:
                images = model.image_features(ctx.views, prompts)
        with self.timer('text_forward'):
            text = model.text_features(prompts)
        ctx.prompts, ctx.image_features, ctx.text_features = prompts, images, text
        ctx.logits = model.logits(images, text)

    def adapt(self, ctx: TTAContext) -> None:
        cached = ctx.extra.get('cached_image_features')  # set before adapt by ConditionedEpisodicTTA
        if cached is None and self.caches_image_features:
            with torch.no_grad(), self.timer('vision_forward'):
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
                        with self.timer('selection'):
                            ctx.selected = self.selector(ctx.logits)
                        self.hooks.call('after_selection', ctx)
                    with self.timer('loss'):
                        ctx.loss, ctx.loss_terms = self.loss(ctx)
                    self.hooks.call('after_loss', ctx)
                    self.optimizer.zero_grad(set_to_none=True)
                    with self.timer('backward'):
                        self.scaler.scale(ctx.loss).backward()
                    for p in frozen:  # this phase leaves these tensors (and their optimizer state) alone
                        p.grad = None
                    with self.timer('optimizer_step'):
                        self.scaler.step(self.optimizer)
                        self.scaler.update()
                    self.at_initial = False
                    self.hooks.call('after_step', ctx)

    @torch.no_grad()
    def predict(self, ctx: TTAContext) -> torch.Tensor:
        """Logits ``[C]`` of the original view (view 0) with the adapted prompts."""
        with self.timer('predict'):
            prompts = self.model.prompts()
            cached = ctx.extra.get('cached_image_features')
            image = cached[:1] if cached is not None else self.model.image_features(ctx.views[:1], prompts)
            text = self.model.text_features(prompts)
            ctx.extra['predict_image_feature'], ctx.extra['predict_text_features'] = image[0], text  # for hooks
            return self.model.logits(image, text)[0]

    def initial_text_features(self) -> torch.Tensor:
        """``[C, E]`` text features of the initial prompts (computed once per label space; call only while
        ``at_initial``)."""
        key = tuple(self.learner.classnames)
        if self._initial_text is None or self._initial_text[0] != key:
            if not self.at_initial:
                raise RuntimeError('initial text features asked for while the prompts are not at their initial state')
            with torch.no_grad():
                self._initial_text = (key, self.model.text_features(self.learner()).detach())
        return self._initial_text[1]

    # ------------------------------------------------------------------ samples
    def _context(self, views: torch.Tensor, label: int, index: int) -> TTAContext:
        rng = SampleRNG.for_sample(derive_seed(self.seed, 1), index)
        return TTAContext(index=index, label=label, views=views.to(self.device), model=self.model, rng=rng)

    def _finish(self, ctx: TTAContext, logits: torch.Tensor, path: str) -> SampleResult:
        result = SampleResult(index=ctx.index, label=ctx.label, logits=logits.float().cpu(), path=path,
                              loss_terms=dict(ctx.loss_terms))
        self.hooks.call('after_predict', ctx, result)
        self.samples_seen += 1
        if self.reset_policy.after_sample(self.samples_seen):
            self.at_initial = True
        self.hooks.call('after_sample', ctx, result)
        return result

    def process_sample(self, views: torch.Tensor, label: int, index: int, path: str = '') -> SampleResult:
        """The reference loop for one sample."""
        ctx = self._context(views, label, index)
        self.hooks.call('before_sample', ctx)
        self.adapt(ctx)
        return self._finish(ctx, self.predict(ctx), path)

    def process_group(self, views: torch.Tensor, labels, indices, paths) -> list[SampleResult]:
        """The fast engine for ``len(labels)`` samples adapted at once (their own prompt copies when > 1)."""
        ctxs = [self._context(views[b], labels[b], indices[b]) for b in range(len(labels))]
        for ctx in ctxs:
            self.hooks.call('before_sample', ctx)
        source = OwnPrompts(self) if len(ctxs) == 1 else PromptCopies(self, len(ctxs))
        self.engine.adapt(ctxs, source)
        logits = self.engine.predict(ctxs, source)
        return [self._finish(ctx, z, path) for ctx, z, path in zip(ctxs, logits, paths)]

    def process_batch(self, batch) -> list[SampleResult]:
        views, labels, indices, paths = self.unpack(batch)
        plan = plan_engine(self, len(labels))
        self._record(plan)
        if plan.mode == 'reference':
            return [self.process_sample(views[b], labels[b], indices[b], paths[b]) for b in range(len(labels))]
        out = []
        for s in range(0, len(labels), plan.group):
            e = s + plan.group
            out += self.process_group(views[s:e], labels[s:e], indices[s:e], paths[s:e])
        return out

    def _record(self, plan: EnginePlan) -> None:
        key = (plan.mode, plan.group, tuple(plan.reasons))
        if key not in self._plans_logged:  # once per distinct plan: which engine runs, and what held it back
            logger.info('tta engine: %s, %d sample(s) at a time%s', plan.mode, plan.group,
                        (': ' + '; '.join(plan.reasons)) if plan.reasons else '')
            self._plans_logged.add(key)

    def engine_summary(self) -> dict[str, Any]:
        """The engine the config asks for and what stops it (the same on every shard: no per-batch counts)."""
        reference = plan_engine(self, 1).reasons if self.mode == 'fast' else []
        return dict(mode='reference' if reference else self.mode, batch_size=self.batch_size,
                    grad_views=self.grad_views, reuse_initial_text=self.reuse_initial_text,
                    truncate_text=bool(getattr(self.model.backbone, 'truncate_text', False)),
                    reference_because=reference, one_at_a_time_because=batch_blockers(self))

    def summary(self) -> dict[str, Any]:
        engine = self.engine_summary()
        return dict(resets=self.reset_policy.n_resets, samples_adapted=self.samples_seen, update=self.update,
                    cached_image_features=self.caches_image_features, losses=self.loss.summary(), engine=engine)
