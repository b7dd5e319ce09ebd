"""Per-layer token taps through forward hooks (never attributes stashed on modules).

``LayerTaps`` registers hooks on transformer blocks for as long as it is open, and collects the
tokens of every forward that runs meanwhile (several chunks of one batch are concatenated). The
recorded tensors keep their autograd graph, so a loss on layer statistics back-propagates to the prompts.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class LayerTaps:
    """Records ``[B, T, D]`` block inputs (``point='input'``) or outputs (``point='output'``)."""

    def __init__(self, blocks: nn.ModuleList, layers: Sequence[int], point: str = 'input',
                 batch_first: bool = True):
        if point not in ('input', 'output'):
            raise ValueError(f"tap point must be 'input' or 'output', got '{point}'")
        n = len(blocks)
        bad = [layer for layer in layers if not 0 <= int(layer) < n]
        if bad:
            raise ValueError(f'tap layers {bad} out of range: the transformer has blocks 0..{n - 1}')
        self.blocks = blocks
        self.layers = tuple(int(layer) for layer in layers)
        self.point = point
        self.batch_first = batch_first
        self._records: dict[int, list[torch.Tensor]] = {layer: [] for layer in self.layers}
        self._handles: list = []

    def _record(self, layer: int, x: torch.Tensor) -> None:
        self._records[layer].append(x if self.batch_first else x.transpose(0, 1))

    def _make_hook(self, layer: int):
        if self.point == 'input':
            def pre_hook(module, args, kwargs):
                self._record(layer, args[0] if args else kwargs['q_x'])
            return pre_hook

        def post_hook(module, args, kwargs, output):
            self._record(layer, output)
        return post_hook

    def __enter__(self) -> 'LayerTaps':
        for layer in self.layers:
            hook = self._make_hook(layer)
            if self.point == 'input':
                h = self.blocks[layer].register_forward_pre_hook(hook, with_kwargs=True)
            else:
                h = self.blocks[layer].register_forward_hook(hook, with_kwargs=True)
            self._handles.append(h)
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __getitem__(self, layer: int) -> torch.Tensor:
        chunks = self._records[int(layer)]
        if not chunks:
            raise KeyError(f'layer {layer} recorded nothing: no forward ran while the taps were open')
        return chunks[0] if len(chunks) == 1 else torch.cat(chunks, dim=0)

    def tokens(self) -> dict[int, torch.Tensor]:
        """All recorded layers, ``{layer: [B, T, D]}``."""
        return {layer: self[layer] for layer in self.layers if self._records[layer]}

    def clear(self) -> None:
        for chunks in self._records.values():
            chunks.clear()
