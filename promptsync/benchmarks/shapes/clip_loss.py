"""CLIP's contrastive loss when captions repeat inside a batch (multi-positive targets).

Synthetic captions repeat a lot ("a photo of a red star." several times per batch): plain in-batch InfoNCE
would treat identical captions of other images as negatives. Here the text side is the batch's *unique*
captions: image ``i`` must pick its caption ``u(i)`` among them, and caption ``j`` must pick the set of images
that carry it (a uniform target over them). ``L = (CE_img->txt + CE_txt->img) / 2``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def unique_captions(token_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(unique rows [U, L], index of each input row's unique caption [B])``."""
    return torch.unique(token_ids, dim=0, return_inverse=True)


def multi_positive_clip_loss(image_features: torch.Tensor, text_features: torch.Tensor, caption_index: torch.Tensor,
                             logit_scale: torch.Tensor) -> torch.Tensor:
    """``image_features [B, E]`` and ``text_features [U, E]`` (normalised); ``caption_index [B]`` in ``0..U-1``."""
    logits = logit_scale * image_features @ text_features.t()                  # [B, U]
    image_to_text = F.cross_entropy(logits, caption_index)
    target = F.one_hot(caption_index, text_features.shape[0]).t().float()      # [U, B]
    target = target / target.sum(dim=1, keepdim=True)
    text_to_image = -(target * logits.t().log_softmax(dim=1)).sum(dim=1).mean()
    return (image_to_text + text_to_image) / 2
