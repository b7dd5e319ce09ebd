"""The test stream of a run (``data.stream``): which selected samples are kept, and in which order they arrive.

For any dataset, after ``data.max_samples``::

    data = dict(stream=dict(imbalance='long_tail', ratio=100, order='shuffled', seed=0))

* ``imbalance``: ``None`` (keep every selected sample) or ``'long_tail'``: the classes are ranked by a permutation
  drawn with ``seed`` (rank 0 = head) and class ``c`` keeps ``max(1, round(head * ratio^(-rank_c / (K - 1))))`` of its
  samples, drawn at random with ``seed`` — the formula of the shapes benchmark's own ``imbalance`` and of the
  long-tailed CIFAR protocol. ``head`` (default: the smallest class count among the selected samples, so that every
  class can fill its quota) caps the head class. ``K`` counts the classes present. A stream whose rounded counts
  miss the asked ratio by more than 10% (``head=25, ratio=100`` has a tail of 1 image: ratio 25) is refused, with
  the head count it would need — a column labelled "ratio 100" must be one.
* ``order``: ``'as_is'`` (dataset order, the default without ``imbalance``), ``'shuffled'`` (a permutation drawn
  with ``seed``; the default with ``imbalance``), ``'class_sorted'`` (grouped by class in label order, dataset order
  within a class: the hardest stream for online methods), ``'head_first'`` / ``'tail_first'`` (grouped by class in
  order of rank).

The stream is part of the config (and so of the fingerprint): the same config gives the same stream on every
machine. Online methods (``TTAMethod.stateful``) see the samples in this order; for the others the order only
changes which samples share a batch. What was kept is recorded in ``run.json`` and ``metrics.json`` (``stream``:
per-class counts, the achieved ratio, the first indices of the order).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from promptsync.errors import ConfigError
from promptsync.utils.seeding import derive_seed

IMBALANCES = (None, 'long_tail')
ORDERS = ('as_is', 'shuffled', 'class_sorted', 'head_first', 'tail_first')
KEYS = ('imbalance', 'ratio', 'order', 'seed', 'head')
SHOWN = 20  # first stream positions recorded
RATIO_TOLERANCE = 0.1  # achieved / asked imbalance ratio may differ by this much (rounding)


@dataclass
class Stream:
    indices: list[int]                        # the kept samples, in stream order
    info: dict[str, Any] = field(default_factory=dict)


def _check(cfg: Mapping) -> dict:
    unknown = sorted(set(cfg) - set(KEYS))
    if unknown:
        raise ConfigError(f'data.stream has unknown keys {unknown}', where='data.stream', fix=f'use only {list(KEYS)}')
    out = dict(cfg)
    if out.get('imbalance') not in IMBALANCES:
        raise ConfigError(f"data.stream.imbalance={out.get('imbalance')!r} is not one of {list(IMBALANCES)}",
                          where='data.stream.imbalance')
    out.setdefault('order', 'shuffled' if out.get('imbalance') else 'as_is')
    if out['order'] not in ORDERS:
        raise ConfigError(f"data.stream.order={out['order']!r} is not one of {list(ORDERS)}", where='data.stream.order')
    seed = out.setdefault('seed', 0)
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise ConfigError(f'data.stream.seed must be an integer, got {seed!r}', where='data.stream.seed')
    if out.get('imbalance'):
        ratio = out.get('ratio')
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not ratio >= 1:
            raise ConfigError(f'data.stream.ratio must be a number >= 1 (head count / tail count), got {ratio!r}',
                              where='data.stream.ratio', fix='e.g. ratio=10 or ratio=100')
        head = out.get('head')
        if head is not None and (isinstance(head, bool) or not isinstance(head, int) or head < 1):
            raise ConfigError(f'data.stream.head must be a positive integer or None, got {head!r}',
                              where='data.stream.head')
    elif out.get('ratio') is not None or out.get('head') is not None:
        raise ConfigError('data.stream.ratio / head are given but imbalance is None: nothing would use them',
                          where='data.stream', fix="set imbalance='long_tail', or drop ratio and head")
    return out


def class_ranks(classes: Sequence[int], seed: int) -> dict[int, int]:
    """Rank of each class (0 = head) from a permutation drawn with ``seed``."""
    order = np.random.default_rng(derive_seed(seed, 11)).permutation(len(classes))
    return {int(classes[j]): rank for rank, j in enumerate(order)}


def build_stream(labels: Sequence[int], selected: Sequence[int], cfg: Mapping | None) -> Stream:
    """The stream over ``selected`` (sorted dataset indices) given every sample's ``labels``."""
    selected = list(selected)
    if not cfg:
        return Stream(selected, {})
    cfg = _check(cfg)
    by_class: dict[int, list[int]] = {}
    for i in selected:
        by_class.setdefault(int(labels[i]), []).append(i)
    classes = sorted(by_class)
    ranks = class_ranks(classes, cfg['seed'])
    kept = dict(by_class)
    if cfg.get('imbalance') == 'long_tail':
        head = cfg.get('head') or min(len(v) for v in by_class.values())
        k = max(1, len(classes) - 1)
        rng = np.random.default_rng(derive_seed(cfg['seed'], 12))
        for c in classes:
            quota = max(1, round(head * cfg['ratio'] ** (-ranks[c] / k)))
            members = by_class[c]
            if quota < len(members):
                members = sorted(np.asarray(members)[rng.permutation(len(members))[:quota]].tolist())
            kept[c] = members
        smallest = min(len(v) for v in by_class.values())
        _check_ratio({c: len(kept[c]) for c in classes}, cfg['ratio'], head, smallest)
    indices = _ordered(kept, ranks, cfg)
    counts = {c: len(kept[c]) for c in classes}
    info = dict(cfg, num_samples=len(indices), num_classes=len(classes),
                class_counts={str(c): n for c, n in counts.items()},
                achieved_ratio=round(max(counts.values()) / min(counts.values()), 4) if counts else None,
                first_indices=indices[:SHOWN])
    return Stream(indices, info)


def _check_ratio(counts: dict[int, int], ratio: float, head: int, smallest: int) -> None:
    """Refuse a stream whose rounded class counts miss ``ratio`` by more than ``RATIO_TOLERANCE``."""
    achieved = max(counts.values()) / min(counts.values())
    if abs(achieved / ratio - 1) <= RATIO_TOLERANCE:
        return
    exact = int(smallest // ratio * ratio) if ratio == int(ratio) else 0  # the largest head that is a multiple of it
    fix = (f'set data.stream.head={exact} (a multiple of the ratio: the tail keeps {exact // int(ratio)})' if exact
           else f'the smallest class has {smallest} images: give every class at least {math.ceil(ratio)} (e.g. more '
                'images per class), or lower the ratio')
    raise ConfigError(f'data.stream: a head class of {head} images gives an imbalance ratio of {achieved:g}, not '
                      f'{ratio:g} (the tail keeps {min(counts.values())} image(s) after rounding)',
                      where='data.stream', fix=fix)


def _ordered(kept: dict[int, list[int]], ranks: dict[int, int], cfg: Mapping) -> list[int]:
    order = cfg['order']
    if order == 'class_sorted':
        return [i for c in sorted(kept) for i in kept[c]]
    if order in ('head_first', 'tail_first'):
        by_rank = sorted(kept, key=lambda c: ranks[c], reverse=order == 'tail_first')
        return [i for c in by_rank for i in kept[c]]
    flat = sorted(i for members in kept.values() for i in members)
    if order == 'shuffled':
        perm = np.random.default_rng(derive_seed(cfg['seed'], 13)).permutation(len(flat))
        return [flat[j] for j in perm]
    return flat
