"""The two prototype sets of DPE (Zhang et al., NeurIPS 2024) and the functions that read them.

* the *visual* side is a :class:`~promptsync.tta.memory.ClassPriorityQueue` of the ``capacity`` (DPE: M = 3)
  lowest-entropy test features per class (DPE's ``update_cache`` rule is TDA's); :func:`queue_prototypes` turns it
  into one visual prototype per class, the mean of its queued features.
* :func:`evolve_text_prototypes`: the *textual* side, a cumulative average of the per-sample optimised text
  prototypes, counting the zero-shot prototypes as the first term.
* :func:`prototype_affinity_logits`, :func:`prototype_alignment`, :func:`entropy_ratio`: DPE's visual-prototype
  logits, its InfoNCE text/visual alignment and its entropy gate, as in ``main_dpe.py`` / ``utils.py`` of
  zhangce01/DPE-CLIP (see docs/baselines.md).

Everything is a tensor of fixed shape, so that the state round-trips through ``state_dict`` exactly.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from promptsync.tta.memory import ClassPriorityQueue


def queue_prototypes(queue: ClassPriorityQueue) -> tuple[torch.Tensor, torch.Tensor]:
    """``(classes [K], prototypes [K, E])``: the mean queued feature of each class holding an item, classes
    ascending (DPE's ``cache_key_value``: ``sorted(cache.keys())``); not normalised."""
    classes = (queue.counts > 0).nonzero().flatten()
    valid = queue.valid()[classes].to(queue.keys.dtype)                  # [K, capacity]
    sums = (queue.keys[classes] * valid.unsqueeze(-1)).sum(dim=1)
    return classes, sums / valid.sum(dim=1, keepdim=True)


def evolve_text_prototypes(current: torch.Tensor, optimised: torch.Tensor, updates: int) -> tuple[torch.Tensor, int]:
    """One cumulative-average step: ``T <- T * n/(n+1) + T* / (n+1)`` with ``n = updates + 1``.

    ``updates`` counts the earlier accepted samples; with the zero-shot prototypes as the first term, after ``n``
    accepted samples ``T = (T_0 + T*_1 + ... + T*_n) / (n + 1)`` (not re-normalised, as in DPE).
    Returns the new prototypes and the new count.
    """
    n = updates + 1
    return current * (n / (n + 1)) + optimised * (1 / (n + 1)), n


def entropy_ratio(entropy: torch.Tensor | float, num_classes: int) -> float:
    """DPE's "normalised" entropy: an entropy in nats divided by ``log2(C)`` (``utils.get_entropy``).

    The official code mixes the bases, so the value lies in ``[0, ln 2]``, not ``[0, 1]``; the gate ``< 0.1`` and
    the queue order are defined on this value, and it is kept as is.
    """
    return float(entropy) / math.log2(num_classes)


def prototype_affinity_logits(features: torch.Tensor, prototypes: torch.Tensor, classes: torch.Tensor,
                              num_classes: int, alpha: float, beta: float) -> torch.Tensor:
    """``alpha * exp(-beta * (1 - f P^T)) @ onehot(classes)``: ``features [N, E]``, ``prototypes [K, E]`` -> ``[N, C]``.

    Classes without a visual prototype get 0. ``features`` are used as given (DPE passes the mean of the selected
    views' normalised features, not re-normalised); ``prototypes`` should be normalised.
    """
    affinity = features @ prototypes.t()
    weights = torch.exp(-beta * (1 - affinity))
    out = features.new_zeros(features.shape[0], num_classes)
    return alpha * out.index_add(1, classes, weights)


def prototype_alignment(visual: torch.Tensor, text: torch.Tensor, temperature: float) -> torch.Tensor:
    """InfoNCE between the visual prototypes ``[K, E]`` (queries) and the text prototypes of the same classes
    ``[K, E]`` (positives; the other classes' text prototypes are the negatives), mean over the ``K`` classes.

    ``CE(cos(v_k, t_j) / temperature, k)``, the ``info_nce`` package's default (unpaired, no explicit negatives)
    that DPE calls with temperature 0.01.
    """
    logits = F.normalize(visual, dim=-1) @ F.normalize(text, dim=-1).t() / temperature
    return F.cross_entropy(logits, torch.arange(visual.shape[0], device=visual.device))
