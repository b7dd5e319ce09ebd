"""The state of one test sample as it moves through the TTA stages.

Losses and hooks read (and hooks may change) this object; nothing is stashed on modules.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from promptsync.models.prompt_learners.base import Prompts
from promptsync.utils.seeding import SampleRNG


@dataclass
class TTAContext:
    index: int                                   # dataset index (also keys the sample's RNG)
    label: int
    views: torch.Tensor                          # [V, 3, H, W]; view 0 is the original
    model: Any                                   # PromptedCLIP
    rng: SampleRNG | None = None                 # the sample's own random streams (for stochastic losses)
    step: int = 0
    prompts: Prompts | None = None
    image_features: torch.Tensor | None = None   # [V, E], normalised
    text_features: torch.Tensor | None = None    # [C, E], normalised
    logits: torch.Tensor | None = None           # [V, C]
    selected: torch.Tensor | None = None         # indices of the confident views
    vision_tokens: dict[int, torch.Tensor] = field(default_factory=dict)  # layer -> [V, T, D]
    # the sample's learnable prompt tensors, in the learner's parameter order (its own copy when samples are
    # adapted together); losses that touch the prompts directly use these, never the learner's parameters
    prompt_params: list[torch.Tensor] | None = None
    # the views whose rows the last forward computed (None = all): after the selection step the fast engine
    # computes only the views the losses read, and the other rows of logits/features/tokens are NaN
    computed_views: torch.Tensor | None = None
    loss: torch.Tensor | None = None
    loss_terms: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)  # scratch space for user hooks/losses

    @property
    def n_views(self) -> int:
        return int(self.views.shape[0])

    @property
    def selected_logits(self) -> torch.Tensor:
        if self.logits is None or self.selected is None:
            raise RuntimeError('selected_logits needs the forward and the selection stage to have run')
        return self.logits[self.selected]


@dataclass
class SampleResult:
    """What one test sample produced: written to the predictions file and fed to the metrics."""
    index: int
    label: int
    logits: torch.Tensor                          # [C] prediction logits (after adaptation)
    path: str = ''
    loss_terms: dict[str, float] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def topk(self, k: int) -> list[int]:
        return self.logits.topk(min(k, self.logits.numel())).indices.tolist()

    @property
    def pred(self) -> int:
        return int(self.logits.argmax())
