"""``TPS``: test-time prototype shifting (Sui et al., WACV 2025; code elaine-sui/TPS).

The class prototypes are the normalised text features of the model's prompts (templates averaged), computed once
without a graph. Per test image a shift is learned on top of them, by entropy minimisation over the confident
views, and the image is predicted with the shifted prototypes; the shift restarts from zero for every image:

    t_c(s) = normalize(t_c + s_c)            (s_c = s for every class when the shift is shared)
    z_i(s) = logit_scale * cos(f_i, t(s))    f_i: normalised image features of view i, computed once, no graph
    s <- optimizer step on  H( (1/|S|) sum_{i in S} softmax(z_i(s)) ),  S = the confident views of z(s)
    prediction: z_0(s) (view 0 = the test image)

Nothing backpropagates through an encoder. The samples of a loaded batch are adapted at once, each with its own
shift (stacked ``[B, C, E]``) and the loss summed over the samples: for an element-wise optimizer this is exactly
each sample alone; any other optimizer adapts one sample at a time.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn.functional as F

from promptsync.errors import ConfigError
from promptsync.losses.entropy import marginal_entropy
from promptsync.registry import OPTIMIZERS, TTA_METHODS, VIEW_SELECTORS
from promptsync.tta.context import SampleResult, TTAContext
from promptsync.tta.timing import NO_TIMER
from promptsync.utils.config import flag

from .base import TTAMethod
from .prompt_sources import ELEMENTWISE_OPTIMIZERS

LOSS_NAME = 'MarginalEntropyLoss'


@TTA_METHODS.register_module()
class TPS(TTAMethod):
    """Args:
        per_class: one shift vector per class prototype (TPS's ``--per_label``, its main setting) or one shared by
            all classes.
        selection: a ``VIEW_SELECTORS`` config (TPS: the 10% lowest-entropy views).
        optimizer: an ``OPTIMIZERS`` config without params (TPS: ``torch.optim.AdamW(lr=5e-3)``, weight decay 0.01).
        steps: optimizer steps per image (TPS: 1; 0 = zero-shot with the prototypes).
        reselect_each_step: select the confident views again at every step (TPS does: ``run_shift_iter``).
    """

    def __init__(self, model, per_class: bool = True, selection: Mapping[str, Any] | None = None,
                 optimizer: Mapping[str, Any] | None = None, steps: int = 1, reselect_each_step: bool = True,
                 hooks=None, seed: int = 0, resources: Mapping[str, Any] | None = None):
        super().__init__(model, hooks, seed, resources)
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 0:
            raise ConfigError(f'tta.steps={steps!r} must be an integer >= 0', where='tta.steps')
        self.per_class = flag(per_class, 'tta.per_class')
        self.reselect_each_step = flag(reselect_each_step, 'tta.reselect_each_step')
        self.steps = steps
        self.selector = VIEW_SELECTORS.build(dict(selection or dict(type='ConfidenceSelection', ratio=0.1)))
        self.optimizer_cfg = dict(optimizer or dict(type='AdamW', lr=5e-3, weight_decay=0.01))
        probe = OPTIMIZERS.build(dict(self.optimizer_cfg), default_args=dict(params=[torch.zeros(1, requires_grad=True)]))
        self.optimizer_name = type(probe).__name__
        #: samples of a loaded batch adapted at once: all of them where that equals each alone
        self.batched = self.optimizer_name in ELEMENTWISE_OPTIMIZERS
        self.timer = NO_TIMER  # a benchmark installs an enabled StageTimer
        self._prototypes: tuple[tuple, torch.Tensor] | None = None
        self.samples_seen = 0
        self._shift_norm_sum = 0.0

    def prototypes(self) -> torch.Tensor:
        """``[C, E]`` normalised text features of the model's prompts, computed once per label space."""
        key = tuple(self.model.classnames)
        if self._prototypes is None or self._prototypes[0] != key:
            with torch.no_grad(), self.timer('text_forward'):
                self._prototypes = (key, self.model.text_features().detach().float())
        return self._prototypes[1]

    @staticmethod
    def shifted(prototypes: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        """``normalize(t + s)``: ``[C, E]`` prototypes, ``[G, C or 1, E]`` shifts -> ``[G, C, E]``."""
        return F.normalize(prototypes.unsqueeze(0) + shift, dim=-1)

    # ------------------------------------------------------------------ stages
    def _forward(self, ctxs, feats, prototypes, shift) -> None:
        text = self.shifted(prototypes, shift)
        for b, ctx in enumerate(ctxs):
            ctx.text_features, ctx.image_features = text[b], feats[b]
            ctx.logits = self.model.logits(feats[b], text[b])
            self.hooks.call('after_forward', ctx)

    def _adapt(self, ctxs, feats, prototypes) -> torch.Tensor:
        """The learned shifts ``[G, C or 1, E]`` of the samples ``ctxs`` (image features ``feats[b]``)."""
        rows = prototypes.shape[0] if self.per_class else 1
        shift = torch.zeros(len(ctxs), rows, prototypes.shape[1], device=prototypes.device, requires_grad=True)
        optimizer = OPTIMIZERS.build(dict(self.optimizer_cfg), default_args=dict(params=[shift]))
        with torch.enable_grad():
            for step in range(self.steps):
                for ctx in ctxs:
                    ctx.step = step
                self._forward(ctxs, feats, prototypes, shift)
                losses = []
                for ctx in ctxs:
                    if ctx.selected is None or self.reselect_each_step:
                        with self.timer('selection'):
                            ctx.selected = self.selector(ctx.logits)
                        self.hooks.call('after_selection', ctx)
                    with self.timer('loss'):
                        ctx.loss = marginal_entropy(ctx.selected_logits)
                        ctx.loss_terms = {LOSS_NAME: float(ctx.loss.detach())}
                    self.hooks.call('after_loss', ctx)
                    if not bool(torch.isfinite(ctx.loss.detach())):
                        raise FloatingPointError(f'TPS: the loss of sample {ctx.index} at step {step} is {ctx.loss}')
                    losses.append(ctx.loss)
                optimizer.zero_grad(set_to_none=True)
                with self.timer('backward'):
                    (losses[0] if len(losses) == 1 else torch.stack(losses).sum()).backward()
                with self.timer('optimizer_step'):
                    optimizer.step()
                for ctx in ctxs:
                    self.hooks.call('after_step', ctx)
        return shift.detach()

    @torch.no_grad()
    def _predict(self, feats, prototypes, shift) -> list[torch.Tensor]:
        """Logits ``[C]`` of each sample's view 0 with its shifted prototypes."""
        with self.timer('predict'):
            text = self.shifted(prototypes, shift)
            return [self.model.logits(feats[b][:1], text[b])[0] for b in range(len(feats))]

    # ------------------------------------------------------------------ samples
    def _group(self, views, feats, labels, indices, paths, prototypes) -> list[SampleResult]:
        ctxs = [TTAContext(index=i, label=y, views=v, model=self.model) for v, y, i in zip(views, labels, indices)]
        for ctx in ctxs:
            self.hooks.call('before_sample', ctx)
        shift = self._adapt(ctxs, feats, prototypes)
        logits = self._predict(feats, prototypes, shift)
        results = []
        for b, (ctx, z, path) in enumerate(zip(ctxs, logits, paths)):
            if not bool(torch.isfinite(z).all()):
                raise FloatingPointError(f'TPS: the prediction of sample {ctx.index} is not finite')
            result = SampleResult(index=ctx.index, label=ctx.label, logits=z.float().cpu(), path=path,
                                  loss_terms=dict(ctx.loss_terms))
            self.hooks.call('after_predict', ctx, result)
            self.samples_seen += 1
            self._shift_norm_sum += float(shift[b].norm(dim=-1).mean())
            self.hooks.call('after_sample', ctx, result)
            results.append(result)
        return results

    def process_batch(self, batch) -> list[SampleResult]:
        views, labels, indices, paths = self.unpack(batch)
        views = views.to(self.device)
        b, v = views.shape[:2]
        prototypes = self.prototypes()
        with torch.no_grad(), self.timer('vision_forward'):
            feats = self.model.image_features(views.flatten(0, 1)).float().view(b, v, -1)
        group = b if self.batched else 1
        out = []
        for s in range(0, b, group):
            e = s + group
            out += self._group(views[s:e], feats[s:e], labels[s:e], indices[s:e], paths[s:e], prototypes)
        return out

    def summary(self) -> dict[str, Any]:
        n = self.samples_seen
        return dict(samples_adapted=n, steps=self.steps, shift='per_class' if self.per_class else 'shared',
                    optimizer=self.optimizer_name, samples_together=self.batched,
                    mean_shift_norm=self._shift_norm_sum / n if n else None)
