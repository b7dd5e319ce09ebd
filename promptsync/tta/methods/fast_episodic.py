"""The fast engine of :class:`EpisodicTTA`: the reference loop's computation, with less of it done.

Exact shortcuts (each a switch of the method; the reference loop, ``mode='reference'``, has none of them):

* ``grad_views='used'``: when the image encoder depends on the prompts (MaPLe), the views are selected from a
  forward of every view *without* gradient, and the forward with gradient runs only on the views the losses
  read (``loss.views_read``: the selected views, plus the original where a loss reads it), instead of
  back-propagating through all of them. After the selection step only those views are computed; the other rows
  of ``ctx.logits``/features/tokens are NaN there (``ctx.computed_views``).
* ``reuse_initial_text``: while the prompts are at their initial state (an episodic run starts every sample
  there) the selection forward and a zero-step prediction use the text features of the initial prompts,
  computed once per label space.
* several samples at once (:class:`~.prompt_sources.PromptCopies`): the text encoder runs the class prompts of
  every copy as one batch and the image encoder every sample's views with that sample's prompts.

Hooks see the stages of every sample in the reference loop's order (``after_forward`` once per phase, with
every view's logits at the selection step).
"""
from __future__ import annotations

from typing import Sequence

import torch

from promptsync.models.prompt_learners.base import Prompts


def _rows(base: torch.Tensor, rows: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """``base`` with ``base[rows] = values`` (out of place; the gradient reaches ``values``)."""
    return base.to(values.dtype).index_put((rows,), values)


def _nan_like(n: int, values: torch.Tensor) -> torch.Tensor:
    return torch.full((n, *values.shape[1:]), float('nan'), dtype=values.dtype, device=values.device)


class FastEpisodic:
    def __init__(self, method):
        self.m = method

    # ------------------------------------------------------------------ encoders
    def _text(self, source, prompts: Sequence[Prompts], grad: bool, stage: str = 'text_forward') -> torch.Tensor:
        """``[B, C, E]`` text features of the copies (the initial ones, computed once, where they are exact)."""
        m = self.m
        with m.timer(stage):
            if not grad and m.reuse_initial_text and source.at_initial:
                return m.initial_text_features().unsqueeze(0).expand(len(prompts), -1, -1)
            return m.model.text_features_of(prompts)

    def _images(self, ctxs, prompts, rows, layers, stage: str = 'vision_forward'):
        """Image features (and vision tokens) of ``ctx.views[rows[b]]`` (``None`` = every view) per sample."""
        m = self.m
        views = [ctx.views if r is None else ctx.views[r] for ctx, r in zip(ctxs, rows)]
        counts = [int(v.shape[0]) for v in views]
        with m.timer(stage):
            if sum(counts) == 0:
                empty = torch.zeros(0, m.model.backbone.embed_dim, device=m.device)
                return [empty for _ in ctxs], [{} for _ in ctxs]
            if not layers:
                return m.model.image_features_of(views, prompts), [{} for _ in ctxs]
            with m.model.backbone.taps('vision', layers) as taps:
                feats = m.model.image_features_of(views, prompts)
            tokens = {layer: t.split(counts) for layer, t in taps.tokens().items()}
        return feats, [{layer: parts[b] for layer, parts in tokens.items()} for b in range(len(ctxs))]

    # ------------------------------------------------------------------ stages
    def _select(self, ctxs) -> None:
        m = self.m
        for ctx in ctxs:
            m.hooks.call('after_forward', ctx)
            with m.timer('selection'):
                ctx.selected = m.selector(ctx.logits)
            m.hooks.call('after_selection', ctx)

    def _set(self, ctx, prompts, images, text, tokens, computed) -> None:
        ctx.prompts, ctx.image_features, ctx.text_features = prompts, images, text
        ctx.vision_tokens, ctx.computed_views = tokens, computed
        ctx.logits = self.m.model.logits(images, text)

    def _set_rows(self, ctx, prompts, feats, text, tokens, rows, keep_other_rows: bool) -> None:
        """Put the rows computed with gradient into the sample's tensors. The other rows keep the selection
        forward's values (``keep_other_rows``) or are NaN; the logits are computed from the computed rows only, so
        no other row takes part in any gradient."""
        v = ctx.n_views
        logits = self.m.model.logits(feats, text)

        def base(old, new):
            return old.detach() if keep_other_rows else _nan_like(v, new)
        ctx.prompts, ctx.text_features = prompts, text
        ctx.image_features = _rows(base(ctx.image_features, feats), rows, feats)
        ctx.vision_tokens = {layer: _rows(base(ctx.vision_tokens.get(layer), t), rows, t) for layer, t in tokens.items()}
        ctx.logits = _rows(base(ctx.logits, logits), rows, logits)
        ctx.computed_views = None if keep_other_rows else rows

    def _forward_phase(self, ctxs, source, cached) -> None:
        """One phase's forward: ``ctx.logits`` etc. with gradient where the losses need it, selection included."""
        m, n = self.m, len(ctxs)
        layers = m.loss.vision_layers
        select = ctxs[0].selected is None or m.reselect_each_step
        prompts = source.prompts()
        for b, ctx in enumerate(ctxs):
            ctx.prompt_params = source.sample_params(b)
        split = cached is None and m.grad_views == 'used'
        if select and split:  # every view without gradient: what the selection sees
            with torch.no_grad():
                text0 = self._text(source, prompts, grad=False)
                feats, toks = self._images(ctxs, prompts, [None] * n, layers)
            for b, ctx in enumerate(ctxs):
                self._set(ctx, prompts[b], feats[b], text0[b], toks[b], None)
            self._select(ctxs)
        text = self._text(source, prompts, grad=True)
        if cached is not None:
            for b, ctx in enumerate(ctxs):
                self._set(ctx, prompts[b], cached[b], text[b], {}, None)
        elif not split:
            feats, toks = self._images(ctxs, prompts, [None] * n, layers)
            for b, ctx in enumerate(ctxs):
                self._set(ctx, prompts[b], feats[b], text[b], toks[b], None)
        else:
            rows = [m.loss.views_read(ctx) for ctx in ctxs]
            feats, toks = self._images(ctxs, prompts, rows, layers)
            for b, ctx in enumerate(ctxs):
                if rows[b] is None:  # a loss reads every view
                    self._set(ctx, prompts[b], feats[b], text[b], toks[b], None)
                    continue
                self._set_rows(ctx, prompts[b], feats[b], text[b], toks[b], rows[b], keep_other_rows=select)
        if not (select and split):
            if select:
                self._select(ctxs)
            else:
                for ctx in ctxs:
                    m.hooks.call('after_forward', ctx)

    def adapt(self, ctxs, source) -> None:
        m = self.m
        cached = None
        if m.caches_image_features and all('cached_image_features' in ctx.extra for ctx in ctxs):
            cached = [ctx.extra['cached_image_features'] for ctx in ctxs]  # set before adapt (ConditionedEpisodicTTA)
        elif m.caches_image_features:
            with torch.no_grad(), m.timer('vision_forward'):
                counts = [ctx.n_views for ctx in ctxs]
                cached = list(m.model.image_features(torch.cat([ctx.views for ctx in ctxs])).split(counts))
            for ctx, feats in zip(ctxs, cached):
                ctx.extra['cached_image_features'] = feats
        with torch.enable_grad():
            for step in range(m.steps):
                for phase, frozen in m.phases:
                    for ctx in ctxs:
                        ctx.step = step
                        ctx.extra['phase'] = phase
                    self._forward_phase(ctxs, source, cached)
                    losses = []
                    for ctx in ctxs:
                        with m.timer('loss'):
                            ctx.loss, ctx.loss_terms = m.loss(ctx)
                        m.hooks.call('after_loss', ctx)
                        losses.append(ctx.loss)
                    total = losses[0] if len(losses) == 1 else torch.stack(losses).sum()
                    source.optimizer.zero_grad(set_to_none=True)
                    with m.timer('backward'):
                        source.backward(total, frozen)
                    with m.timer('optimizer_step'):
                        source.step()
                    source.stepped()
                    for ctx in ctxs:
                        m.hooks.call('after_step', ctx)

    @torch.no_grad()
    def predict(self, ctxs, source) -> list[torch.Tensor]:
        """Logits ``[C]`` of each sample's original view (view 0) with its adapted prompts."""
        m = self.m
        with m.timer('predict'):
            prompts = source.prompts()
            text = self._text(source, prompts, grad=False, stage='predict')
            if m.caches_image_features:
                images = [ctx.extra['cached_image_features'][:1] for ctx in ctxs]
            else:
                images, _ = self._images(ctxs, prompts, [slice(0, 1)] * len(ctxs), (),
                                         stage='predict')
            for b, ctx in enumerate(ctxs):  # what the prediction is made of, for hooks (after_predict)
                ctx.extra['predict_image_feature'], ctx.extra['predict_text_features'] = images[b][0], text[b]
            return [m.model.logits(images[b], text[b])[0] for b in range(len(ctxs))]
