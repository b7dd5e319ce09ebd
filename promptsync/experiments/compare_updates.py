"""How two TTA configs move the prompts, sample by sample, and which loss term decides the update.

For the same test images, each config adapts from the same initial prompts; we record the update
``delta = prompts_after - prompts_before`` (all learnable tensors, flattened), the prediction, and for every loss
term its gradient at the first step. Reported: sign agreement and cosine of the two configs' updates, how often
their predictions agree, and per term the share of prompt coordinates its gradient reaches and, among those, the
share whose gradient sign equals the total's (one AdamW
step from a fresh state moves every coordinate by about ``lr * sign(total gradient)``, so signs are what a loss
weight can change).
"""
from __future__ import annotations

import statistics
from typing import Any

import torch
from mmengine.config import Config

from promptsync.datasets import ViewDataset
from promptsync.engine.config_check import check_config
from promptsync.engine.loops.evaluation import build_evaluation, check_bank, run_resources
from promptsync.engine.resources import require_resources
from promptsync.engine.runner import resolve_device
from promptsync.hooks import Hook


class UpdateProbe(Hook):
    """Records the learner before/after each sample and every loss term's gradient at the first step."""

    def __init__(self):
        self.records: list[dict[str, Any]] = []
        self.method = None  # set by the caller once the method is built

    def before_sample(self, runner, ctx) -> None:
        self.current = dict(index=ctx.index, before=_flat(ctx.model.prompt_learner), terms={})

    def after_loss(self, runner, ctx) -> None:
        if ctx.step != 0 or self.current['terms']:
            return
        method = self.method
        params = [p for p in ctx.model.prompt_learner.parameters() if p.requires_grad]
        total = None
        for name, weight, loss in method.loss.terms:
            grads = torch.autograd.grad(weight * loss(ctx), params, retain_graph=True, allow_unused=True)
            flat = torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(grads, params)])
            self.current['terms'][name] = flat
            total = flat if total is None else total + flat
        self.current['total'] = total

    def after_step(self, runner, ctx) -> None:
        self.current['after'] = _flat(ctx.model.prompt_learner)
        if 'grad' not in self.current:  # the gradient the optimizer actually used at the first step
            self.current['grad'] = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
                                              for p in ctx.model.prompt_learner.parameters() if p.requires_grad])

    def after_predict(self, runner, ctx, result) -> None:
        self.current['pred'], self.current['label'] = result.pred, result.label
        self.records.append(self.current)


def _flat(learner) -> torch.Tensor:
    """All learnable prompt tensors, flattened in ``parameters()`` order (the order of the gradients)."""
    return torch.cat([p.detach().flatten().float().clone() for p in learner.parameters() if p.requires_grad])


def spread(indices: list[int], samples: int) -> list[int]:
    """``samples`` indices evenly spaced over ``indices`` (datasets are sorted by class: a prefix is one class)."""
    if samples >= len(indices):
        return list(indices)
    return [indices[(i * len(indices)) // samples] for i in range(samples)]


def _probe(cfg: Config, samples: int) -> list[dict]:
    """Each config is checked as a run would be (keys, resources, prototype bank), then probed sample by sample."""
    probe = UpdateProbe()
    check_config(cfg, 'test')
    require_resources(cfg, 'test')
    resources = run_resources(cfg)
    if 'prototypes' in resources:
        check_bank(cfg, resources['prototypes'])
    ev = build_evaluation(cfg, resolve_device(cfg.get('device', 'auto')), resources=resources, extra_hooks=[probe])
    probe.method = ev.method  # the hook reads the method's loss terms
    data = ViewDataset(ev.dataset, ev.views, ev.seed, spread(ev.indices, samples))
    for i in range(len(data)):
        item = data[i]
        ev.method.process_sample(item['views'], item['label'], item['index'], item['path'])
    return probe.records


def compare_updates(cfg_a: Config, cfg_b: Config, samples: int = 50) -> dict[str, Any]:
    a, b = _probe(cfg_a, samples), _probe(cfg_b, samples)
    agree, cosine, same_pred = [], [], []
    for ra, rb in zip(a, b):
        da, db = ra['after'] - ra['before'], rb['after'] - rb['before']
        moved = (da != 0) & (db != 0)
        agree.append(float((torch.sign(da[moved]) == torch.sign(db[moved])).float().mean()) if moved.any() else 1.0)
        cosine.append(float(torch.nn.functional.cosine_similarity(da, db, dim=0)))
        same_pred.append(ra['pred'] == rb['pred'])
    terms = {}
    for name in (b[0]['terms'] if b else {}):
        touched = [r['terms'][name] != 0 for r in b]  # a term may not reach every prompt tensor
        share = [float((torch.sign(r['terms'][name][t]) == torch.sign(r['total'][t])).float().mean())
                 if t.any() else 0.0 for r, t in zip(b, touched)]
        norm = [float(r['terms'][name].norm()) for r in b]
        terms[name] = dict(sign_share=statistics.fmean(share), grad_norm=statistics.fmean(norm),
                           touched=statistics.fmean(float(t.float().mean()) for t in touched))
    acc = {k: 100.0 * statistics.fmean([r['pred'] == r['label'] for r in rs]) for k, rs in (('a', a), ('b', b))}
    return dict(samples=len(a), update_sign_agreement=statistics.fmean(agree), update_cosine=statistics.fmean(cosine),
                prediction_agreement=100.0 * statistics.fmean(same_pred), top1=acc, terms_of_b=terms)
