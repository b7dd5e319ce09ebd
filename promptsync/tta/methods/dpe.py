"""``DPE``: Dual Prototype Evolving (Zhang et al., NeurIPS 2024), an *online* TTA method, as zhangce01/DPE-CLIP.

Two prototype sets are carried along the test stream: textual prototypes ``T`` (initialised from the zero-shot text
features) and visual prototypes (a per-class queue of the lowest-entropy test features). Per sample:

1. encode the views with the frozen encoder; with ``T_hat = normalise(T)`` take the 10% lowest-entropy views
   ``S``: feature ``f = mean_S f_i``, logits ``z = mean_S z_i``, entropy ``H(mean_S softmax z_i) / log2 C``;
2. offer ``(f, entropy)`` to the queue of the pseudo-label ``argmax z`` (before adapting: the current sample
   counts in its own visual prototype);
3. learn residuals ``r_t [C, E]`` and ``r_v [K, E]`` (from zero, a fresh AdamW each sample) on
   ``H(softmax(z(T + r_t) + A(f, V + r_v))) + lambda * InfoNCE(V + r_v, T + r_t)``, both sides normalised,
   ``A(f, V) = alpha * exp(-beta (1 - f V^T)) onehot``;
4. predict ``z(view 0) + A(f_0, V + r_v)`` (or, ``predict_views='selected'``, the selected views again: the
   official code does this for ImageNet-A only);
5. if ``H(softmax(prediction)) / log2 C < tau``, fold ``normalise(T + r_t)`` into ``T`` by a cumulative average.

The samples of a loaded batch are processed one after another, each view set encoded on its own, so predictions
do not depend on ``data.batch_size``. The equations, defaults and differences are in docs/baselines.md.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from promptsync.errors import ConfigError
from promptsync.losses.entropy import marginal_entropy
from promptsync.registry import OPTIMIZERS, TTA_METHODS, VIEW_SELECTORS
from promptsync.tta.context import SampleResult, TTAContext
from promptsync.tta.memory import ClassPriorityQueue

from .base import PerSampleMethod
from .dpe_prototypes import (entropy_ratio, evolve_text_prototypes, prototype_affinity_logits, prototype_alignment,
                             queue_prototypes)

PREDICT_VIEWS = ('original', 'selected')
COUNTERS = ('samples', 'text_updates', 'non_finite')


def _number(value, name: str, low: float = 0.0, strict: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value) and (
        value > low if strict else value >= low)
    if not ok:
        raise ConfigError(f'tta.{name}={value!r} must be a finite number {">" if strict else ">="} {low}',
                          where=f'tta.{name}')
    return float(value)


@TTA_METHODS.register_module()
class DPE(PerSampleMethod):
    """Args (defaults: the official ImageNet yaml, ``configs/imagenet.yaml`` of zhangce01/DPE-CLIP):
        alpha, beta: weight and sharpness of the visual-prototype logits (yaml ``positive.alpha/beta``: 6, 5).
        queue_capacity: features per class in the visual queue (``shot_capacity``: 3).
        text_lr, image_lr: AdamW learning rates of the text / visual residuals (``learning_rate.text/image``: 6e-4).
        align_weight: lambda of the InfoNCE alignment (``learning_rate.align``: 0.5).
        align_temperature: InfoNCE temperature (hard-coded 0.01).
        text_update_threshold: tau of the text-prototype gate on ``H / log2 C`` (hard-coded 0.1).
        steps: residual optimisation steps per sample (hard-coded 1).
        selection: the confident views (``VIEW_SELECTORS``; DPE: the 10% lowest-entropy views).
        optimizer: an ``OPTIMIZERS`` config without params or lr (DPE: AdamW, eps 1e-3, weight decay 0.1).
        predict_views: 'original' (view 0; official for every dataset but ImageNet-A) | 'selected'.
    """

    stateful = True

    def __init__(self, model, hooks=None, seed: int = 0, resources=None, alpha: float = 6.0, beta: float = 5.0,
                 queue_capacity: int = 3, text_lr: float = 6e-4, image_lr: float = 6e-4, align_weight: float = 0.5,
                 align_temperature: float = 0.01, text_update_threshold: float = 0.1, steps: int = 1,
                 selection: Mapping[str, Any] | None = None, optimizer: Mapping[str, Any] | None = None,
                 predict_views: str = 'original'):
        super().__init__(model, hooks, seed, resources)
        self.alpha, self.beta = _number(alpha, 'alpha'), _number(beta, 'beta')
        self.text_lr, self.image_lr = _number(text_lr, 'text_lr'), _number(image_lr, 'image_lr')
        self.align_weight = _number(align_weight, 'align_weight')
        self.align_temperature = _number(align_temperature, 'align_temperature', strict=True)
        self.tau = _number(text_update_threshold, 'text_update_threshold')
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ConfigError(f'tta.steps={steps!r} must be an integer >= 0', where='tta.steps')
        if predict_views not in PREDICT_VIEWS:
            raise ConfigError(f'tta.predict_views={predict_views!r} is not one of {PREDICT_VIEWS}',
                              where='tta.predict_views')
        self.steps, self.predict_views = steps, predict_views
        self.selector = VIEW_SELECTORS.build(dict(selection or dict(type='ConfidenceSelection', ratio=0.1)))
        self.optimizer_cfg = dict(optimizer or dict(type='AdamW', eps=1e-3, weight_decay=0.1))
        if 'lr' in self.optimizer_cfg:
            raise ConfigError('tta.optimizer.lr is not used by DPE: the two residuals have their own rates',
                              where='tta.optimizer.lr', fix='set tta.text_lr and tta.image_lr instead')
        self._optimizer([torch.zeros(1, requires_grad=True)], [torch.zeros(1, requires_grad=True)])  # check early
        with torch.no_grad():
            initial = model.text_features().detach()
        self.num_classes, dim = initial.shape
        if self.num_classes < 2:
            raise ConfigError(f'DPE needs at least 2 classes, the label space has {self.num_classes}',
                              where='data.dataset')
        self.initial_text = initial.clone()
        self.text_prototypes = initial                       # T [C, E], evolved along the stream
        if isinstance(queue_capacity, bool) or not isinstance(queue_capacity, int) or queue_capacity < 1:
            raise ConfigError(f'tta.queue_capacity={queue_capacity!r} must be an integer >= 1',
                              where='tta.queue_capacity', fix='DPE uses 3 (shot_capacity in its yaml files)')
        self.queue = ClassPriorityQueue(self.num_classes, queue_capacity, dim, device=initial.device)
        self.counters = dict.fromkeys(COUNTERS, 0)

    # ------------------------------------------------------------------ pieces
    def _optimizer(self, text_params, image_params):
        groups = [dict(params=list(text_params), lr=self.text_lr), dict(params=list(image_params), lr=self.image_lr)]
        return OPTIMIZERS.build(dict(self.optimizer_cfg), default_args=dict(params=groups))

    def _logits(self, features: torch.Tensor, text: torch.Tensor, classes: torch.Tensor,
                visual: torch.Tensor) -> torch.Tensor:
        """CLIP logits of ``features [N, E]`` on ``text`` plus the visual-prototype logits, ``[N, C]``."""
        return self.model.logits(features, text) + prototype_affinity_logits(
            features, visual, classes, self.num_classes, self.alpha, self.beta)

    def _confident(self, feats: torch.Tensor, text: torch.Tensor, ctx: TTAContext | None = None):
        """``(f, z, selected, view_logits)``: mean feature and mean logits of the confident views."""
        view_logits = self.model.logits(feats, text)
        selected = self.selector(view_logits)
        if ctx is not None:
            ctx.logits, ctx.selected = view_logits, selected
            self.hooks.call('after_forward', ctx)
            self.hooks.call('after_selection', ctx)
            selected = ctx.selected
        return feats[selected].mean(dim=0, keepdim=True), view_logits[selected].mean(dim=0), selected, view_logits

    def _adapt(self, ctx: TTAContext, feats: torch.Tensor, f: torch.Tensor):
        """The residual steps; returns the adapted ``(text [C, E], classes [K], visual [K, E])``."""
        classes, visual0 = queue_prototypes(self.queue)
        selected = ctx.selected
        r_text = torch.zeros_like(self.text_prototypes, requires_grad=True)
        r_visual = torch.zeros_like(visual0, requires_grad=True)
        optimizer = self._optimizer([r_text], [r_visual])
        with torch.enable_grad():
            for step in range(self.steps):
                ctx.step = step
                text = F.normalize(self.text_prototypes + r_text, dim=-1)
                visual = F.normalize(visual0 + r_visual, dim=-1)
                z = self.model.logits(feats[selected], text).mean(dim=0, keepdim=True)
                final = z + prototype_affinity_logits(f, visual, classes, self.num_classes, self.alpha, self.beta)
                entropy = marginal_entropy(final)
                align = prototype_alignment(visual, text[classes], self.align_temperature)
                ctx.text_features = text
                ctx.loss = entropy + self.align_weight * align
                ctx.loss_terms = dict(entropy=float(entropy.detach()), alignment=float(align.detach()))
                self.hooks.call('after_loss', ctx)
                optimizer.zero_grad(set_to_none=True)
                ctx.loss.backward()
                optimizer.step()
                self.hooks.call('after_step', ctx)
        with torch.no_grad():
            return (F.normalize(self.text_prototypes + r_text, dim=-1), classes,
                    F.normalize(visual0 + r_visual, dim=-1))

    @torch.no_grad()
    def _predict(self, feats: torch.Tensor, text: torch.Tensor, classes: torch.Tensor,
                 visual: torch.Tensor) -> torch.Tensor:
        if self.predict_views == 'original':
            return self._logits(feats[:1], text, classes, visual)[0]
        f, z, _, _ = self._confident(feats, text)
        return z + prototype_affinity_logits(f, visual, classes, self.num_classes, self.alpha, self.beta)[0]

    # ------------------------------------------------------------------ one sample
    def process_sample(self, views: torch.Tensor, label: int, index: int, path: str = '') -> SampleResult:
        ctx = TTAContext(index=index, label=label, views=views.to(self.device), model=self.model)
        self.hooks.call('before_sample', ctx)
        with torch.no_grad():
            feats = self.model.image_features(ctx.views)
            ctx.image_features = feats
            text0 = F.normalize(self.text_prototypes, dim=-1)
            ctx.text_features = text0
            f, z, selected, view_logits = self._confident(feats, text0, ctx)
            entropy = entropy_ratio(marginal_entropy(view_logits[selected]), self.num_classes)
        finite = math.isfinite(entropy) and bool(torch.isfinite(f).all())
        if finite:  # the current sample joins the queue of its pseudo-label before the adaptation
            self.queue.push(int(z.argmax()), f[0], entropy)
        if len(self.queue) == 0:  # nothing queued yet (a non-finite first sample): no visual side
            text, classes, visual = text0, *queue_prototypes(self.queue)
        else:
            text, classes, visual = self._adapt(ctx, feats, f)
        logits = self._predict(feats, text, classes, visual)
        result = SampleResult(index=index, label=label, logits=logits.float().cpu(), path=path,
                              loss_terms=dict(ctx.loss_terms))
        self.hooks.call('after_predict', ctx, result)
        gate = entropy_ratio(marginal_entropy(logits.unsqueeze(0)), self.num_classes)
        if finite and bool(torch.isfinite(text).all()) and gate < self.tau:
            self.text_prototypes, self.counters['text_updates'] = evolve_text_prototypes(
                self.text_prototypes, text, self.counters['text_updates'])
        self.counters['non_finite'] += int(not (finite and bool(torch.isfinite(logits).all())))
        self.counters['samples'] += 1
        self.hooks.call('after_sample', ctx, result)
        return result

    # ------------------------------------------------------------------ state and counters
    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {'text_prototypes': self.text_prototypes.detach().cpu().clone()}
        state.update({f'queue_{k}': v for k, v in self.queue.state_dict().items()})
        state.update({f'count_{k}': torch.tensor(v, dtype=torch.long) for k, v in self.counters.items()})
        return state

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        expected = set(self.state_dict())
        if set(state) != expected:
            raise ConfigError(f'the saved state is not a DPE state of this version: missing '
                              f'{sorted(expected - set(state))}, unexpected {sorted(set(state) - expected)}',
                              where='state', fix='resume with the method and config the state was saved with')
        text = state['text_prototypes']
        if tuple(text.shape) != tuple(self.text_prototypes.shape):
            raise ConfigError(f'the saved DPE text prototypes have shape {tuple(text.shape)}, this run expects '
                              f'{tuple(self.text_prototypes.shape)} (classes, feature width)',
                              where='state.text_prototypes', fix='resume with the config the state was saved with')
        try:
            self.queue.load_state_dict({k[len('queue_'):]: v for k, v in state.items() if k.startswith('queue_')})
        except ValueError as err:
            raise ConfigError(f'the saved DPE visual queue does not fit this run: {err}', where='state.queue_*',
                              fix='resume with the config (classes, model, tta.queue_capacity) the state was '
                                  'saved with') from err
        self.text_prototypes = text.to(self.text_prototypes).clone()
        self.counters = {k: int(state[f'count_{k}']) for k in COUNTERS}

    def summary(self) -> dict[str, Any]:
        queue = self.queue.stats()
        drift = 1 - (F.normalize(self.text_prototypes, dim=-1) * self.initial_text).sum(-1)
        return dict(self.counters, classes_with_visual_prototype=queue['classes'], queued_features=queue['items'],
                    queue_added=queue['added'], queue_replaced=queue['replaced'], queue_rejected=queue['rejected'],
                    queue_capacity=self.queue.capacity,
                    text_update_threshold=self.tau, predict_views=self.predict_views,
                    mean_text_prototype_drift=float(drift.mean()))
