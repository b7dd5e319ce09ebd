"""``BankAccumulator``: the running statistics of a prototype bank while a proxy set streams through the encoder.

Per configured layer a :class:`ClassStatsAccumulator` (per token, or ``token_stats='pooled'``: every token a sample
of its class), plus the per-class sums of normalised image features (the visual prototypes). Shaped lazily by
the first batch. Its state is tensors only (resumable from a safetensors file). The states of several processes
merge with the parallel form of Chan et al.'s update (:meth:`all_reduce`): with ``N = sum_r n_r``,
``mean = sum_r n_r mean_r / N`` and ``M2 = sum_r (M2_r + n_r (mean_r - mean)^2)`` — three sums over processes in
float64, so the merged bank equals one process's to float64 rounding.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from promptsync.datasets.base import LabelSpace

from .accumulator import ClassStatsAccumulator
from .bank import PrototypeBank


class BankAccumulator:
    def __init__(self, num_classes: int, layers, token_stats: str, device):
        self.k, self.layers, self.token_stats, self.device = num_classes, tuple(layers), token_stats, device
        self.acc: dict[int, ClassStatsAccumulator] = {}
        self.visual_sum: torch.Tensor | None = None
        self.visual_count = torch.zeros(num_classes, dtype=torch.long, device=device)

    @property
    def empty(self) -> bool:
        return self.visual_sum is None

    def update(self, tokens: dict[int, torch.Tensor], features: torch.Tensor, labels: torch.Tensor) -> None:
        for layer in self.layers:
            x = tokens[layer].detach()
            lab = labels
            if self.token_stats == 'pooled':  # every token is a sample of the class distribution
                lab = labels.repeat_interleave(x.shape[1])
                x = x.reshape(-1, x.shape[-1])
            if layer not in self.acc:
                self.acc[layer] = ClassStatsAccumulator(self.k, x.shape[1:], device=self.device)
            self.acc[layer].update(x, lab)
        feats = F.normalize(features.detach().double(), dim=-1)
        if self.visual_sum is None:
            self.visual_sum = torch.zeros(self.k, feats.shape[1], dtype=torch.float64, device=self.device)
        self.visual_sum.index_add_(0, labels, feats)
        self.visual_count += torch.bincount(labels, minlength=self.k)

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {'visual_sum': self.visual_sum, 'visual_count': self.visual_count}
        for layer, acc in self.acc.items():
            out.update({f'{k}.layer{layer}': v for k, v in acc.state_dict().items()})
        return {k: v.cpu().contiguous() for k, v in out.items()}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        self.visual_sum = tensors['visual_sum'].to(self.device)
        self.visual_count = tensors['visual_count'].to(self.device)
        for layer in self.layers:
            shape = tensors[f'mean.layer{layer}'].shape[1:]
            self.acc[layer] = ClassStatsAccumulator(self.k, shape, device=self.device)
            self.acc[layer].load_state_dict({k: tensors[f'{k}.layer{layer}'] for k in ('count', 'mean', 'm2')})

    def shapes(self) -> dict | None:
        """Token shape per layer and the feature width (None before the first batch)."""
        if self.empty:
            return None
        return dict(tokens={layer: list(acc.shape) for layer, acc in self.acc.items()},
                    width=int(self.visual_sum.shape[1]))

    def ensure_shapes(self, shapes: dict) -> None:
        """Zero statistics of the given shapes (a process that saw no image still joins the merge)."""
        if not self.empty:
            return
        for layer in self.layers:
            self.acc[layer] = ClassStatsAccumulator(self.k, shapes['tokens'][layer], device=self.device)
        self.visual_sum = torch.zeros(self.k, shapes['width'], dtype=torch.float64, device=self.device)

    def all_reduce(self, reduce_sum: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Replace this process's statistics by those of all processes (``reduce_sum`` sums a tensor over them, in
        place, and returns it)."""
        for acc in self.acc.values():
            count = reduce_sum(acc.count.clone())
            n_r = acc._bcast(acc.count.to(acc.dtype))
            mean = reduce_sum(acc.mean * n_r) / acc._bcast(count.clamp(min=1).to(acc.dtype))
            m2 = reduce_sum(acc.m2 + n_r * (acc.mean - mean) ** 2)
            acc.count, acc.mean, acc.m2 = count, mean, m2
        reduce_sum(self.visual_sum)
        reduce_sum(self.visual_count)

    def to_bank(self, space: LabelSpace, dtype: torch.dtype) -> PrototypeBank:
        counts = self.visual_count.cpu()
        return PrototypeBank(layers=self.layers,
                             mean={lay: self.acc[lay].mean.to(dtype).cpu() for lay in self.layers},
                             var={lay: self.acc[lay].variance().to(dtype).cpu() for lay in self.layers}, counts=counts,
                             visual=F.normalize(self.visual_sum.float(), dim=-1).cpu(), label_space=space,
                             token_stats=self.token_stats)
