"""C-TPT's regulariser: the average text feature dispersion (ATFD) of the class text features.

Yoon et al., ICLR 2024 ("C-TPT: Calibrated test-time prompt tuning for vision-language models via text feature
dispersion"; code hee-suk-yoon/C-TPT). Prompts whose class text features lie further apart give better calibrated
predictions, so C-TPT adds ``- lambda * ATFD`` to TPT's marginal entropy.
"""
from __future__ import annotations

import torch

from promptsync.registry import LOSSES

from .base import TTALoss


def text_feature_dispersion(text_features: torch.Tensor) -> torch.Tensor:
    """ATFD of ``[C, E]`` class text features: ``(1/C) sum_c || t_c - (1/C) sum_k t_k ||_2``."""
    if text_features.dim() != 2:
        raise ValueError(f'text features must be [C, E], got shape {tuple(text_features.shape)}')
    feats = text_features.float()
    return torch.linalg.vector_norm(feats - feats.mean(dim=0), dim=-1).mean()


@LOSSES.register_module()
class TextFeatureDispersionLoss(TTALoss):
    """``-ATFD(ctx.text_features)``: minimising it spreads the class text features apart.

    ``ctx.text_features`` are the normalised class features of the sample's current prompts (templates averaged),
    as C-TPT's ``get_text_features``. The config weight is C-TPT's ``lambda_term`` (positive): the total loss is
    ``H(p_bar) + lambda * (-ATFD)``. Reads no view, only the context.
    """

    batch_safe = True

    def views_read(self, ctx) -> torch.Tensor:
        return torch.zeros(0, dtype=torch.long, device=ctx.views.device)

    def forward(self, ctx) -> torch.Tensor:
        if ctx.text_features is None:
            raise RuntimeError('TextFeatureDispersionLoss needs ctx.text_features (the forward stage has not run)')
        return -text_feature_dispersion(ctx.text_features)
