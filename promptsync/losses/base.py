"""Base class of TTA losses and the weighted sum that combines them from a config list."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from promptsync.registry import LOSSES


class TTALoss(nn.Module):
    """A loss of one test sample's :class:`~promptsync.tta.context.TTAContext`.

    Subclasses implement ``forward(ctx) -> scalar``. A loss that needs per-layer vision tokens lists
    the layers in ``vision_layers``; the engine then records them in ``ctx.vision_tokens``.

    Two declarations let the fast engine (``tta.mode='fast'``) skip work; the defaults are the safe ones:

    * ``views_read(ctx)``: the views whose rows (logits, image features, tokens) the loss reads. The fast
      engine runs the prompted image encoder with gradient only on the union over the losses (and, after the
      selection step, on nothing else); ``None`` (the default) = every view.
    * ``batch_safe``: the loss reads only the context — never the prompt learner or the model's prompt state —
      so that several samples with their own prompt copies can be adapted at once (``ctx.prompt_params`` are
      the sample's learnable tensors). Default ``False``: a run with such a loss adapts one sample at a time.
    """

    vision_layers: tuple[int, ...] = ()
    batch_safe: bool = False

    def views_read(self, ctx) -> torch.Tensor | None:
        """Indices of the views this loss reads (``None`` = all)."""
        return None

    def setup(self, model, resources: Mapping[str, Any] | None = None) -> None:
        """Called once before the first sample: load resources (the run's checked files by role, e.g.
        ``resources['prototypes']``) and bind to the test classes (``model.label_space``)."""

    def summary(self) -> dict:
        """What this loss wants recorded in ``metrics.json`` (e.g. how prototypes were matched)."""
        return {}


class WeightedLossSum:
    """``sum_k weight_k * loss_k(ctx)`` from ``[dict(type=..., weight=..., name=..., **kwargs), ...]``.

    ``name`` (default: the type name, suffixed ``_1``, ``_2`` when repeated) keys the per-term values
    that are logged and written with each prediction.
    """

    def __init__(self, cfgs: Sequence[Mapping[str, Any]]):
        if not cfgs:
            raise ValueError('an adapting TTA method needs at least one loss, e.g. '
                             "losses=[dict(type='MarginalEntropyLoss', weight=1.0)]")
        self.terms: list[tuple[str, float, nn.Module]] = []
        for cfg in cfgs:
            cfg = dict(cfg)
            weight = float(cfg.pop('weight', 1.0))
            base = cfg.pop('name', None) or (cfg['type'] if isinstance(cfg['type'], str) else cfg['type'].__name__)
            name, k = base, 1
            while name in {n for n, _, _ in self.terms}:
                name, k = f'{base}_{k}', k + 1
            loss = LOSSES.build(cfg)
            self.terms.append((name, weight, loss))

    @property
    def batch_safe(self) -> bool:
        return all(getattr(loss, 'batch_safe', False) for _, _, loss in self.terms)

    def unsafe_terms(self) -> list[str]:
        return [name for name, _, loss in self.terms if not getattr(loss, 'batch_safe', False)]

    def views_read(self, ctx) -> torch.Tensor | None:
        """The union of the terms' views (sorted), ``None`` when a term reads every view."""
        parts = []
        for _, _, loss in self.terms:
            views = loss.views_read(ctx) if hasattr(loss, 'views_read') else None
            if views is None:
                return None
            parts.append(views.reshape(-1).to(ctx.views.device))
        if not parts:
            return torch.zeros(0, dtype=torch.long, device=ctx.views.device)
        return torch.unique(torch.cat(parts))

    @property
    def vision_layers(self) -> tuple[int, ...]:
        layers = set()
        for _, _, loss in self.terms:
            layers.update(getattr(loss, 'vision_layers', ()))
        return tuple(sorted(layers))

    def setup(self, model, resources: Mapping[str, Any] | None = None) -> None:
        for _, _, loss in self.terms:
            if hasattr(loss, 'setup'):
                loss.setup(model, resources)

    def summary(self) -> dict:
        return {name: s for name, _, loss in self.terms if hasattr(loss, 'summary') and (s := loss.summary())}

    def __call__(self, ctx) -> tuple[torch.Tensor, dict[str, float]]:
        total, values = None, {}
        for name, weight, loss in self.terms:
            value = loss(ctx)
            values[name] = float(value.detach())
            total = weight * value if total is None else total + weight * value
        return total, values
