"""Token-distribution alignment: PromptAlign's loss and PromptSync's class-aware prototype alignment.

Test statistics of layer ``l`` over the selected views ``S`` (per token and channel, biased variance):
``mu_l = mean_{i in S} X_{l,i}``, ``s2_l = mean_{i in S} (X_{l,i} - mu_l)^2``; ``|.|_1`` below is the *mean*
absolute difference over tokens and channels (``F.l1_loss``), as in PromptAlign's code.
"""
from __future__ import annotations

import torch

from promptsync.registry import LOSSES

from .prototype_base import PrototypeLoss, probability_views, token_statistics


class WeightedL1ToRows(torch.autograd.Function):
    """``sum_r w_r * mean|x - P_r|`` for ``x [*S]``, rows ``P [R, *S]``, weights ``w [R]``, in class chunks.

    Only ``[*S]`` and ``[R]`` tensors are kept for the backward pass (not ``[R, *S]``), so weighting all 1000
    ImageNet prototypes costs one pass over the rows and no extra memory. ``d/dx = sum_r w_r sign(x - P_r) / n``
    (``sign(0) = 0``, like autograd's ``abs``), ``d/dw_r = mean|x - P_r|``.
    """

    @staticmethod
    def forward(ctx, x, rows, weights, chunk: int = 64):
        xf = x.detach().float()
        n = xf.numel()
        dist = torch.zeros(rows.shape[0], device=x.device)
        grad_x = torch.zeros_like(xf)
        # rows with zero weight need no work unless the weights themselves receive a gradient
        active = torch.arange(rows.shape[0], device=x.device) if ctx.needs_input_grad[2] \
            else torch.nonzero(weights.detach() != 0).flatten()
        for start in range(0, active.numel(), chunk):
            idx = active[start:start + chunk]
            diff = xf.unsqueeze(0) - rows[idx].float()
            dist[idx] = diff.abs().flatten(1).mean(dim=1)
            grad_x += torch.einsum('r,r...->...', weights.detach()[idx].float(), diff.sign()) / n
        ctx.save_for_backward(grad_x, dist)
        return (weights.float() * dist).sum()

    @staticmethod
    def backward(ctx, grad_out):
        grad_x, dist = ctx.saved_tensors
        return grad_out * grad_x, None, grad_out * dist, None


def aligned_l1(x: torch.Tensor, rows: torch.Tensor, weights: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    return WeightedL1ToRows.apply(x, rows, weights, chunk)


@LOSSES.register_module()
class DistributionAlignmentLoss(PrototypeLoss):
    """PromptAlign: ``sum_{l in layers} [ a * |mu_l - mu_src_l|_1 + b * |s2_l - s2_src_l|_1 ]``.

    The source statistics are the class-agnostic ones (a per-class file is pooled over classes by its
    counts). PromptAlign's code: layers (0, 1), ``a = b = 0.5``, and a loss weight of ``100 / 3`` (its
    ``DISTR_LOSS_W / (ALIGN_LAYER_TO - ALIGN_LAYER_FROM)``), set in the config's loss list.
    """

    def __init__(self, prototypes: str | None = None, layers=(0, 1), mean_weight: float = 0.5,
                 var_weight: float = 0.5):
        super().__init__(prototypes, layers, label_space='class_agnostic')
        self.mean_weight, self.var_weight = mean_weight, var_weight

    batch_safe = True

    def setup(self, model, resources=None) -> None:
        self.load_bank(model, resources)

    def views_read(self, ctx) -> torch.Tensor:
        return ctx.selected

    def forward(self, ctx) -> torch.Tensor:
        one = torch.ones(1, device=ctx.logits.device)
        total = 0.0
        for layer in self.vision_layers:
            mu, s2 = token_statistics(ctx.vision_tokens[layer][ctx.selected], self.pooled)
            rows_mu, rows_s2 = self.target.mean[layer], self.target.var[layer]
            self.check_tokens(mu, rows_mu, layer)
            total = total + self.mean_weight * aligned_l1(mu, rows_mu, one) \
                + self.var_weight * aligned_l1(s2, rows_s2, one)
        return total


@LOSSES.register_module()
class ClassAwarePrototypeAlignmentLoss(PrototypeLoss):
    """PromptSync: ``sum_k w_k sum_{l} [ a |mu_l - mu_{l,k}|_1 + b |s2_l - s2_{l,k}|_1 ]`` with ``w = p_bar``.

    ``p_bar`` is the mean class probability of the selected views (plus the test image itself when
    ``include_original``). Classes whose prototype is missing in the proxy set contribute their weight to the
    class-agnostic statistics. With one class, or with all weight on one class, this is PromptAlign's loss
    against that class's statistics.

    Args:
        include_original: add view 0 to the views whose probabilities form ``p_bar``.
        detach_weights: stop the gradient through ``p_bar`` (prompts cannot lower the loss by moving
            probability mass onto the nearest prototype).
        top_k: keep only the ``k`` largest weights, renormalised to sum to one (``None`` = all classes).
        chunk: prototype rows per chunk in the weighted L1.
    """

    def __init__(self, prototypes: str | None = None, layers=(0, 1), mean_weight: float = 0.5,
                 var_weight: float = 0.5, include_original: bool = True, detach_weights: bool = True,
                 top_k: int | None = None, label_space: str = 'auto', match_top_m: int = 5,
                 match_temperature: float = 0.01, chunk: int = 64):
        super().__init__(prototypes, layers, label_space, match_top_m, match_temperature)
        if top_k is not None and top_k < 1:
            raise ValueError(f'top_k must be >= 1 or None, got {top_k}')
        self.mean_weight, self.var_weight = mean_weight, var_weight
        self.include_original, self.detach_weights, self.top_k, self.chunk = \
            include_original, detach_weights, top_k, chunk

    batch_safe = True

    def setup(self, model, resources=None) -> None:
        self.load_bank(model, resources)

    def views_read(self, ctx) -> torch.Tensor:
        return probability_views(ctx, self.include_original)

    def class_weights(self, ctx) -> torch.Tensor:
        """``p_bar`` over the test classes (optionally detached and truncated to the top k)."""
        probs = ctx.logits[probability_views(ctx, self.include_original)].float().softmax(dim=-1).mean(dim=0)
        if self.detach_weights:
            probs = probs.detach()
        if self.top_k is not None and self.top_k < probs.numel():
            top = probs.topk(self.top_k)
            probs = torch.zeros_like(probs).scatter(0, top.indices, top.values / top.values.sum())
        return probs

    def forward(self, ctx) -> torch.Tensor:
        weights = self.class_weights(ctx)
        n_rows = next(iter(self.target.mean.values())).shape[0]
        row_w = torch.zeros(n_rows, device=weights.device, dtype=weights.dtype).index_add(
            0, self.target.row_of_class, weights)
        total = 0.0
        for layer in self.vision_layers:
            mu, s2 = token_statistics(ctx.vision_tokens[layer][ctx.selected], self.pooled)
            self.check_tokens(mu, self.target.mean[layer], layer)
            total = total + self.mean_weight * aligned_l1(mu, self.target.mean[layer], row_w, self.chunk) \
                + self.var_weight * aligned_l1(s2, self.target.var[layer], row_w, self.chunk)
        return total
