"""What one adapted sample is measured by: pure functions of the initial and the adapted tensors.

Symbols (one test sample; ``C`` classes, ``E`` embedding width, all features L2-normalised as the model emits them):

* ``theta_0``, ``theta_a``: the prompt learner's learnable tensors before and after the adaptation; a branch ``b``
  is the learner's parameter group ``learner.branches[b]`` (the split the update schedules use).
* ``f_0``, ``f_a`` ``[E]``: the image feature of the original view (view 0) with the initial / adapted prompts.
* ``T_0``, ``T_a`` ``[C, E]``: the class text features with the initial / adapted prompts; ``D = T_a - T_0``.
* ``y_hat``: the adapted prediction.

The hook (:mod:`promptsync.hooks.adaptation_recorder`) calls these on every sample; docs/analysis.md has the
definitions with the reasons for each choice.
"""
from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch

#: below this norm a feature shift counts as no shift: its direction is float rounding (fp32 features have unit
#: norm, rounding moves them by ~1e-7 per coordinate), so no cosine is taken
MIN_SHIFT = 1e-5


def branch_change(adapted: Sequence[torch.Tensor], initial: Sequence[torch.Tensor],
                  groups: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """``{group: sqrt(sum_{p in group} |p_a - p_0|_F^2)}``: the Euclidean norm of the change of each group of
    tensors (``groups`` maps a name to positions in ``adapted``/``initial``) and ``'all'`` over every tensor."""
    if len(adapted) != len(initial):
        raise ValueError(f'{len(adapted)} adapted tensors but {len(initial)} initial ones')
    squares = [float((a.detach().double() - b.detach().double().to(a.device)).pow(2).sum())
               for a, b in zip(adapted, initial)]
    out = {name: math.sqrt(sum(squares[i] for i in idx)) for name, idx in groups.items()}
    out['all'] = math.sqrt(sum(squares))
    return out


def tensor_norms(tensors: Sequence[torch.Tensor], groups: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """``{group: sqrt(sum_{p in group} |p|_F^2)}`` and ``'all'`` (the scale a change is compared with)."""
    zeros = [torch.zeros_like(t) for t in tensors]
    return branch_change(tensors, zeros, groups)


def cosine_or_none(u: torch.Tensor, v: torch.Tensor, min_norm: float = MIN_SHIFT) -> float | None:
    """``cos(u, v)`` in float64, or ``None`` when either vector is shorter than ``min_norm`` (no direction)."""
    u, v = u.double().flatten(), v.double().flatten()
    nu, nv = float(u.norm()), float(v.norm())
    if nu < min_norm or nv < min_norm:
        return None
    return float(u @ v) / (nu * nv)


def class_spread(text: torch.Tensor) -> float:
    """``(1/C) sum_c |t_c - mean_c t_c|^2``: how far the class text features lie from their mean (0 = every class
    at one point, i.e. a collapsed classifier)."""
    t = text.double()
    return float((t - t.mean(dim=0)).pow(2).sum(dim=1).mean())


def feature_shifts(f_0: torch.Tensor, f_a: torch.Tensor, T_0: torch.Tensor, T_a: torch.Tensor, pred: int,
                   min_shift: float = MIN_SHIFT) -> dict:
    """The per-sample shifts of the features and their cross-modal consistency (float64).

    Returns ``image_shift = |f_a - f_0|``; ``text_shift``: ``rms = sqrt((1/C) sum_c |D_c|^2)``,
    ``mean = |(1/C) sum_c D_c|`` (the shift common to all classes), ``pred = |D_{y_hat}|``; ``consistency``:
    ``pred = cos(D_{y_hat}, f_a - f_0)``, ``mean = cos((1/C) sum_c D_c, f_a - f_0)`` (``None`` where a shift is
    below ``min_shift``); ``text_spread = class_spread(T_a)``; ``sq_norm = |D|_F^2`` (for the sums over samples).
    """
    if T_0.shape != T_a.shape or T_a.dim() != 2 or f_0.shape != f_a.shape or f_a.shape[-1] != T_a.shape[-1]:
        raise ValueError(f'shapes do not match: f_0 {tuple(f_0.shape)}, f_a {tuple(f_a.shape)}, T_0 '
                         f'{tuple(T_0.shape)}, T_a {tuple(T_a.shape)}')
    d_img = f_a.double() - f_0.double().to(f_a.device)
    D = T_a.double() - T_0.double().to(T_a.device)
    common = D.mean(dim=0)
    sq = float(D.pow(2).sum())
    return dict(
        image_shift=float(d_img.norm()),
        text_shift=dict(rms=math.sqrt(sq / D.shape[0]), mean=float(common.norm()), pred=float(D[pred].norm())),
        consistency=dict(pred=cosine_or_none(D[pred], d_img, min_shift), mean=cosine_or_none(common, d_img, min_shift)),
        text_spread=class_spread(T_a),
        sq_norm=sq)
