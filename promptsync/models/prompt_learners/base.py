"""What a prompt learner produces, and the contract every learner follows.

A learner owns only its learnable tensors (its ``state_dict`` holds nothing else); frozen token
embeddings derived from the class names are non-persistent buffers rebuilt by ``set_classnames``.
The backbone is referenced, not owned, so ``learner.parameters()`` is exactly what TTA may update.
"""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class TextPrompts:
    """Input of the prompted text encoder for ``N = n_classes * n_templates`` sequences (class-major)."""
    token_ids: torch.Tensor                       # [N, L]; placeholders where prompt tokens go
    embeddings: torch.Tensor | None = None        # [N, L, D]; None = plain token embedding of token_ids
    positions: torch.Tensor | None = None         # [N, n] positions of the learnable tokens
    deep: dict[int, torch.Tensor] = field(default_factory=dict)  # {layer >= 1: [n, D] or [N, n, D]}
    n_templates: int = 1


@dataclass
class VisionPrompts:
    """Tokens appended to the image tokens (``shallow``) and replaced per layer (``deep``)."""
    shallow: torch.Tensor | None = None           # [n, W] or [B, n, W]
    deep: dict[int, torch.Tensor] = field(default_factory=dict)


@dataclass
class Prompts:
    text: TextPrompts
    vision: VisionPrompts | None = None


class PromptLearner(nn.Module, metaclass=ABCMeta):
    """Base class: holds a reference to the backbone, snapshots and restores its learnable state."""

    #: branch name -> attribute-name prefixes of the parameters on that branch (for update schedules)
    branches: dict[str, tuple[str, ...]] = {}

    def __init__(self, backbone: nn.Module):
        super().__init__()
        object.__setattr__(self, '_backbone', backbone)  # a reference, not a submodule
        self.classnames: list[str] = []

    @property
    def backbone(self) -> nn.Module:
        return self._backbone

    @property
    def has_vision_prompts(self) -> bool:
        """True when the image encoder depends on this learner (image features cannot be cached)."""
        return False

    @abstractmethod
    def set_classnames(self, classnames: list[str]) -> None:
        """(Re)build the frozen, class-dependent buffers for a label space."""

    @abstractmethod
    def forward(self) -> Prompts:
        """The prompts for the current class names."""

    @abstractmethod
    def prompts_for(self, classnames: list[str]) -> Prompts:
        """The prompts, with the current learnable state, for another list of class names."""

    # ------------------------------------------------------------------ state
    def snapshot(self) -> dict[str, torch.Tensor]:
        """Detached copies of every learnable tensor (what ``restore`` puts back bit-for-bit)."""
        return {k: v.detach().clone() for k, v in self.state_dict().items()}

    def restore(self, snapshot: dict[str, torch.Tensor]) -> None:
        """Copy a snapshot back in place (parameters keep their identity, so optimizers stay valid)."""
        current = self.state_dict(keep_vars=True)
        if set(current) != set(snapshot):
            raise KeyError(f'snapshot keys {sorted(snapshot)} do not match the learner keys {sorted(current)}')
        with torch.no_grad():
            for key, tensor in current.items():
                tensor.copy_(snapshot[key])

    def branch_parameters(self, branch: str) -> list[nn.Parameter]:
        """Parameters of one branch ('text' | 'vision'), by the prefixes in ``branches``."""
        if branch not in self.branches:
            raise KeyError(f"{type(self).__name__} has no '{branch}' branch; branches: {sorted(self.branches)}")
        prefixes = self.branches[branch]
        return [p for name, p in self.named_parameters() if name.startswith(prefixes)]


def clean_classname(name: str) -> str:
    """CoOp's cleaning: underscores become spaces."""
    return name.replace('_', ' ').strip()
