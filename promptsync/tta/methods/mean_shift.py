"""``MTA`` (Zanella & Ben Ayed, CVPR 2024, MaxZanella/MTA): MeanShift over the views' image features.

Training-free and episodic: one no-grad forward of the ``V`` views (original + random crops) gives normalised
features ``x_i`` and logits ``z_i = logit_scale cos(x_i, t_c)``. MTA then seeks the mode ``m`` of the views'
features, each view weighted by an inlierness score ``y_i``, alternating (``max_iter`` outer iterations, each step
iterated at most ``max_iter`` times or until it moves less than ``tol``):

* bandwidths ``h_i = sqrt(0.5 * mean_{j in N_k(i)} ||x_i - x_j||^2)`` over the ``k = int(knn_ratio (V - 1))``
  nearest other views, and kernels ``K_i(m) = exp(-||x_i - m||^2 / (2 h_i^2))``;
* affinity ``A = P P^T`` with ``P = softmax(z)`` (rows: views);
* inlierness: ``y <- softmax((K(m) + lambda_q A y) / lambda_y)`` (``K(m)`` fixed during the inner loop);
* mode: ``m <- sum_i y_i K_i(m) x_i / sum_i y_i K_i(m)``, then ``m <- m / ||m||``;

from ``y = 1/V`` and ``m = x_0`` (the original view). The prediction is ``logit_scale * cos(m, t_c)`` (the model's
logits of the mode), softmax of which is CLIP's probability for the mode embedding.

The steps are pure functions of tensors (:func:`mta_mode` and the functions it calls); the method calls them
once per sample.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from promptsync.errors import ConfigError
from promptsync.registry import TTA_METHODS
from promptsync.tta.context import SampleResult

from .base import PerSampleMethod


@dataclass(frozen=True)
class MTAResult:
    """mode: ``[E]`` normalised; inlierness: ``[V]`` the final ``y``; the inner steps run over all outer
    iterations."""
    mode: torch.Tensor
    inlierness: torch.Tensor
    inlierness_steps: int
    mode_steps: int


def knn_bandwidth(features: torch.Tensor, knn_ratio: float = 0.3) -> torch.Tensor:
    """``[V]`` bandwidths ``sqrt(0.5 * mean of the squared distances to the k = int(knn_ratio (V - 1)) nearest other
    views)``; exact distances (the point itself, at distance 0, comes first and is left out)."""
    n = features.shape[0]
    k = int(knn_ratio * (n - 1))
    if k < 1:
        raise ConfigError(f'MTA bandwidth: int({knn_ratio} * (V - 1)) = 0 neighbours with V = {n} views',
                          where='tta.views.n_views / tta.knn_ratio',
                          fix="use TPTViews with n_views=64 (MTA's setting): at least 5 views for knn_ratio=0.3")
    dist = torch.cdist(features, features, compute_mode='donot_use_mm_for_euclid_dist')
    nearest = dist.sort(dim=1).values[:, 1:k + 1]
    return torch.sqrt(0.5 * (nearest ** 2).mean(dim=1))


def gaussian_density(mode: torch.Tensor, bandwidth: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """``[V]`` kernels ``exp(-||x_i - m||^2 / (2 h_i^2))``; a zero bandwidth (at least k + 1 identical views) takes
    the limit (1 at distance 0, else 0) where the official code gives NaN."""
    dist = torch.norm(features - mode, p=2, dim=-1)
    density = torch.exp(-dist ** 2 / (2 * bandwidth ** 2))
    return torch.where(bandwidth > 0, density, (dist == 0).to(density.dtype))


def view_affinity(logits: torch.Tensor) -> torch.Tensor:
    """``[V, V]`` affinity ``P P^T`` of the views' class probabilities ``P = softmax(logits)``."""
    probs = logits.softmax(dim=1)
    return probs @ probs.t()


def inlierness_step(density: torch.Tensor, affinity: torch.Tensor, y: torch.Tensor, lambda_y: float,
                    lambda_q: float) -> torch.Tensor:
    """``softmax((K + lambda_q A y) / lambda_y)``."""
    return torch.softmax((density + lambda_q * (affinity @ y)) / lambda_y, dim=-1)


def mode_step(mode: torch.Tensor, y: torch.Tensor, bandwidth: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """One weighted MeanShift update ``sum_i y_i K_i x_i / sum_i y_i K_i``, re-normalised."""
    weights = gaussian_density(mode, bandwidth, features) * y
    new = (weights.unsqueeze(1) * features).sum(dim=0) / weights.sum()
    return new / new.norm(p=2)


def mta_mode(features: torch.Tensor, logits: torch.Tensor, lambda_y: float = 0.2, lambda_q: float = 4.0,
             max_iter: int = 5, tol: float = 1e-6, knn_ratio: float = 0.3) -> MTAResult:
    """The mode of ``features [V, E]`` (normalised, row 0 = the original view) weighted by inlierness, with the
    views' ``logits [V, C]`` for the affinity (module docstring); computed in float32 (float64 inputs stay)."""
    dtype = torch.float64 if features.dtype == torch.float64 else torch.float32
    features, logits = features.to(dtype), logits.to(dtype)
    bandwidth = knn_bandwidth(features, knn_ratio)
    affinity = view_affinity(logits)
    n = features.shape[0]
    y = torch.full((n,), 1.0 / n, dtype=features.dtype, device=features.device)
    mode = features[0]
    y_steps = m_steps = 0
    for _ in range(max_iter):
        density = gaussian_density(mode, bandwidth, features)
        for _ in range(max_iter):
            old, y = y, inlierness_step(density, affinity, y, lambda_y, lambda_q)
            y_steps += 1
            if torch.norm(old - y) < tol:
                break
        for _ in range(max_iter):
            old, mode = mode, mode_step(mode, y, bandwidth, features)
            m_steps += 1
            if torch.norm(old - mode) < tol:
                break
    return MTAResult(mode, y, y_steps, m_steps)


def _positive(value, key: str, integer: bool = False):
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or value <= 0:
        kind = 'an integer >= 1' if integer else 'a positive number'
        raise ConfigError(f'{key}={value!r} must be {kind}', where=key, fix="MTA's values: lambda_y=0.2, "
                          'lambda_q=4, max_iter=5, tol=1e-6, knn_ratio=0.3')
    return value


@TTA_METHODS.register_module()
class MTA(PerSampleMethod):
    """Args (defaults = the official ``solve_mta`` and ``main.py``):
        lambda_y: temperature of the inlierness softmax (entropic term weight), 0.2.
        lambda_q: weight of the affinity (quadratic) term, 4.
        max_iter: outer iterations, and the cap of each inner loop, 5.
        tol: an inner loop stops when its update moves less than this (L2), 1e-6.
        knn_ratio: share of the other views whose distances set each bandwidth, 0.3.

    Hooks see ``after_forward`` (``ctx.logits`` and ``ctx.image_features`` of every view); ``ctx.extra`` then holds
    ``mode`` and ``inlierness``. ``summary()`` counts samples, outer iterations and the inner steps run (totals,
    so that shards add up: divide by ``outer_iterations`` for the mean steps per inner loop).
    """

    def __init__(self, model, lambda_y: float = 0.2, lambda_q: float = 4.0, max_iter: int = 5, tol: float = 1e-6,
                 knn_ratio: float = 0.3, hooks=None, seed: int = 0, resources=None):
        super().__init__(model, hooks, seed, resources)
        self.lambda_y = float(_positive(lambda_y, 'tta.lambda_y'))
        self.lambda_q = float(_positive(lambda_q, 'tta.lambda_q'))
        self.max_iter = _positive(max_iter, 'tta.max_iter', integer=True)
        self.tol = float(_positive(tol, 'tta.tol'))
        self.knn_ratio = float(_positive(knn_ratio, 'tta.knn_ratio'))
        if self.knn_ratio > 1:
            raise ConfigError(f'tta.knn_ratio={knn_ratio!r} must be a share in (0, 1]', where='tta.knn_ratio')
        with torch.no_grad():
            self.text_features = model.text_features()
        self.samples = self.inlierness_steps = self.mode_steps = 0

    @torch.no_grad()
    def process_sample(self, views: torch.Tensor, label: int, index: int, path: str = '') -> SampleResult:
        ctx = self.begin_sample(views, label, index, self.text_features)
        out = mta_mode(ctx.image_features, ctx.logits, self.lambda_y, self.lambda_q, self.max_iter, self.tol,
                       self.knn_ratio)
        ctx.extra.update(mode=out.mode, inlierness=out.inlierness)
        self.samples += 1
        self.inlierness_steps += out.inlierness_steps
        self.mode_steps += out.mode_steps
        logits = self.model.logits(out.mode.unsqueeze(0), self.text_features)[0].float().cpu()
        result = SampleResult(index=index, label=label, logits=logits, path=path)
        self.hooks.call('after_predict', ctx, result)
        self.hooks.call('after_sample', ctx, result)
        return result

    def summary(self) -> dict:
        # integers only where a sum over shards is right (metrics.json sums integer counters of shards)
        return dict(samples=self.samples, outer_iterations=self.samples * self.max_iter,
                    inlierness_steps=self.inlierness_steps, mode_steps=self.mode_steps, lambda_y=self.lambda_y,
                    lambda_q=self.lambda_q)
