"""Several samples' prompts as one encoder batch (batched episodic TTA: one prompt copy per test image).

The text encoder gets the ``N`` class sequences of every copy, one copy after the other (``[B * N, L, D]``, deep
prompts per sequence); the image encoder gets each sample's views with that sample's prompts on every row. The
encoders already take per-row prompts, so a batch of copies costs one pass instead of ``B``.
"""
from __future__ import annotations

from typing import Sequence

import torch

from .base import TextPrompts, VisionPrompts


def _per_row(prompt: torch.Tensor, rows: int) -> torch.Tensor:
    """``[n, D]`` (shared by the rows) or ``[rows, n, D]`` -> ``[rows, n, D]``."""
    if prompt.dim() == 2:
        return prompt.unsqueeze(0).expand(rows, -1, -1)
    if prompt.shape[0] != rows:
        raise ValueError(f'a per-row prompt of shape {tuple(prompt.shape)} does not fit {rows} rows')
    return prompt


def stack_text_prompts(prompts: Sequence[TextPrompts]) -> TextPrompts:
    """The copies' class sequences in one batch, copy-major (rows ``b * N .. (b + 1) * N - 1`` are copy ``b``)."""
    if len(prompts) == 1:
        return prompts[0]
    first = prompts[0]
    n = first.token_ids.shape[0]
    if any(p.token_ids.shape != first.token_ids.shape or p.n_templates != first.n_templates for p in prompts):
        raise ValueError('prompt copies of one batch must share their label space and templates')
    if any(set(p.deep) != set(first.deep) for p in prompts):
        raise ValueError('prompt copies of one batch must have deep prompts at the same layers')
    embeddings = None
    if first.embeddings is not None:
        embeddings = torch.cat([p.embeddings for p in prompts])
    positions = None if first.positions is None else first.positions.repeat(len(prompts), 1)
    deep = {layer: torch.cat([_per_row(p.deep[layer], n) for p in prompts]) for layer in first.deep}
    return TextPrompts(token_ids=first.token_ids.repeat(len(prompts), 1), embeddings=embeddings,
                       positions=positions, deep=deep, n_templates=first.n_templates)


def stack_vision_prompts(prompts: Sequence[VisionPrompts | None], rows: Sequence[int]) -> VisionPrompts | None:
    """One ``VisionPrompts`` for the concatenated views: sample ``b``'s prompts on its ``rows[b]`` rows."""
    if all(p is None for p in prompts):
        return None
    if any(p is None for p in prompts):
        raise ValueError('either every prompt copy has vision prompts or none has')
    if len(prompts) == 1:
        return prompts[0]
    first = prompts[0]
    shallow = None
    if first.shallow is not None:
        shallow = torch.cat([_per_row(p.shallow, k) for p, k in zip(prompts, rows)])
    deep = {layer: torch.cat([_per_row(p.deep[layer], k) for p, k in zip(prompts, rows)]) for layer in first.deep}
    return VisionPrompts(shallow=shallow, deep=deep)
