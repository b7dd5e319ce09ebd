"""Which prototype each *target* class uses when the test label space is not the proxy's.

Modes (``label_space=`` of the prototype losses):

* ``'by_id'`` — match class ids (wnids, folder names); ``'by_name'`` — match normalised class names (a name
  that is ambiguous on the proxy side, e.g. ImageNet's two 'missile' classes, counts as unmatched);
  unmatched target classes use the class-agnostic row (the pooled statistics of all proxy classes).
* ``'auto'`` (default) — ``by_id`` when both sides have ids and at least one matches, else ``by_name`` when a
  name matches, else ``class_agnostic``. ImageNet -> ImageNet-A/R/V2/Sketch matches every class by wnid.
* ``'class_agnostic'`` — one row for every class: PromptAlign's behaviour.
* ``'text_similarity'`` — each target class gets a mixture of its ``top_m`` most text-similar proxy classes
  (softmax of text-feature cosines / ``temperature``), mixing means and variances by the law of total variance.

The result always has one row per statistic that a class can point at, plus a summary for the logs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from promptsync.datasets.base import LabelSpace
from promptsync.utils.logging import get_logger

from .bank import PrototypeBank

logger = get_logger('prototypes')
MODES = ('auto', 'by_id', 'by_name', 'class_agnostic', 'text_similarity')


@dataclass
class TargetPrototypes:
    """Rows of statistics and the row each target class uses."""
    mean: dict[int, torch.Tensor]            # layer -> [R, ...]
    var: dict[int, torch.Tensor]
    visual: torch.Tensor | None              # [R, E] normalised
    row_of_class: torch.Tensor               # [C] long
    matched: torch.Tensor                    # [C] bool: the class has a prototype of its own
    mode: str
    summary: dict = field(default_factory=dict)

    def to(self, device) -> 'TargetPrototypes':
        mv = {k: v.to(device) for k, v in self.mean.items()}
        vv = {k: v.to(device) for k, v in self.var.items()}
        vis = self.visual.to(device) if self.visual is not None else None
        return TargetPrototypes(mv, vv, vis, self.row_of_class.to(device), self.matched.to(device), self.mode,
                                self.summary)


def _norm_name(name: str) -> str:
    return ' '.join(name.replace('_', ' ').lower().split())


def _match(keys_bank, keys_target) -> list[int]:
    """Proxy index per target class, -1 when absent or ambiguous on the proxy side."""
    seen: dict[str, int] = {}
    for i, k in enumerate(keys_bank):
        seen[k] = -2 if k in seen else i  # -2 marks an ambiguous key
    return [seen.get(k, -1) if seen.get(k, -1) >= 0 else -1 for k in keys_target]


def _gather(bank: PrototypeBank, layers, proxy_index: list[int]) -> TargetPrototypes:
    """Rows = the matched proxy classes + one class-agnostic row for the rest."""
    used = sorted({i for i in proxy_index if i >= 0})
    pos = {p: r for r, p in enumerate(used)}
    idx = torch.tensor(used, dtype=torch.long)
    g_mean, g_var = bank.global_stats(layers)
    mean = {lay: torch.cat([bank.mean[lay].float()[idx], g_mean[lay][None]]) for lay in layers}
    var = {lay: torch.cat([bank.var[lay].float()[idx], g_var[lay][None]]) for lay in layers}
    visual = None
    if bank.visual is not None:
        visual = torch.cat([bank.visual.float()[idx], bank.global_visual().float()[None]])
    rows = torch.tensor([pos[i] if i >= 0 else len(used) for i in proxy_index], dtype=torch.long)
    matched = torch.tensor([i >= 0 for i in proxy_index], dtype=torch.bool)
    return TargetPrototypes(mean, var, visual, rows, matched, 'gathered')


def _text_similarity(bank, layers, target: LabelSpace, text_features: Callable, top_m: int,
                     temperature: float) -> TargetPrototypes:
    with torch.no_grad():
        t_target = F.normalize(text_features(list(target.names)).float(), dim=-1)
        t_proxy = F.normalize(text_features(list(bank.label_space.names)).float(), dim=-1)
    sim = (t_target @ t_proxy.t()).cpu()
    sim[:, bank.counts.cpu() == 0] = float('-inf')
    top = sim.topk(min(top_m, sim.shape[1]), dim=1)
    a = torch.zeros_like(sim).scatter_(1, top.indices, (top.values / temperature).softmax(dim=1))  # [C, K]
    mean, var = {}, {}
    for lay in layers:
        m, v = bank.mean[lay].float().flatten(1), bank.var[lay].float().flatten(1)
        mix_mean = a @ m
        mix_var = a @ (v + m ** 2) - mix_mean ** 2
        shape = bank.mean[lay].shape[1:]
        mean[lay], var[lay] = mix_mean.view(-1, *shape), mix_var.clamp(min=0).view(-1, *shape)
    visual = F.normalize(a @ bank.visual.float(), dim=-1) if bank.visual is not None else None
    c = len(target)
    return TargetPrototypes(mean, var, visual, torch.arange(c), torch.ones(c, dtype=torch.bool), 'text_similarity',
                            dict(top_m=top_m, temperature=temperature))


def map_prototypes(bank: PrototypeBank, target: LabelSpace, layers, mode: str = 'auto',
                   text_features: Callable | None = None, top_m: int = 5, temperature: float = 0.01,
                   who: str = 'a prototype loss') -> TargetPrototypes:
    """Prototype rows for ``target``'s classes (see the module docstring for the modes)."""
    if mode not in MODES:
        raise ValueError(f"label_space mode '{mode}' is not one of {MODES}")
    bank.check_layers(layers, who)
    c = len(target)
    if mode == 'text_similarity':
        if text_features is None:
            raise ValueError("label_space='text_similarity' needs the model's text encoder")
        out = _text_similarity(bank, layers, target, text_features, top_m, temperature)
    else:
        by_id = [-1] * c
        if bank.label_space.ids and target.ids and mode in ('auto', 'by_id'):
            by_id = _match(bank.label_space.ids, target.ids)
        by_name = _match([_norm_name(n) for n in bank.label_space.names], [_norm_name(n) for n in target.names])
        if mode == 'by_id':
            if not (bank.label_space.ids and target.ids):
                raise ValueError("label_space='by_id' needs class ids on both the prototype file and the dataset")
            index, used = by_id, 'by_id'
        elif mode == 'by_name':
            index, used = by_name, 'by_name'
        elif mode == 'class_agnostic':
            index, used = [-1] * c, 'class_agnostic'
        elif any(i >= 0 for i in by_id):
            index, used = by_id, 'by_id'
        elif any(i >= 0 for i in by_name):
            index, used = by_name, 'by_name'
        else:
            index, used = [-1] * c, 'class_agnostic'
        out = _gather(bank, layers, index)
        out.mode = used
    n_matched = int(out.matched.sum())
    unmatched = [target.names[i] for i in range(c) if not out.matched[i]]
    out.summary = dict(out.summary, requested=mode, mode=out.mode, classes=c, matched=n_matched,
                       unmatched_examples=unmatched[:5])
    level = logger.warning if (mode == 'auto' and n_matched < c) else logger.info
    level('%s: %d of %d target classes have their own prototype (mode %s%s)', who, n_matched, c, out.mode,
          '' if n_matched == c else '; the others use the class-agnostic statistics')
    return out
