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

from promptsync.errors import ConfigError
from promptsync.utils.logging import get_logger

logger = get_logger('prompts')


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

    @property
    def conditions_on_image(self) -> bool:
        """True when the prompts depend on the input image (CoCoOp): ``forward(image_features)`` gives ``B * C``
        image-major text rows, and ``forward()`` without image features is a ``ConfigError``. Such a learner has no
        class text features of its own, so a method that encodes the classes once cannot use it."""
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


def _some(names: list[str], limit: int = 8) -> str:
    shown = ', '.join(repr(n) for n in names[:limit])
    return shown + (f' (+{len(names) - limit} more)' if len(names) > limit else '')


def check_class_prompts(tokenizer, classnames: list[str], texts: list[str], token_ids: torch.Tensor) -> None:
    """Warn about class prompts cut at the context length and about classes whose prompts coincide.

    The tokenizer truncates silently (keeping the end token last), so long class names can lose exactly the
    words that tell the classes apart; when every class is left with the same tokens the classifier is at
    chance, which is an error. ``texts`` and the rows of ``token_ids`` are class-major (one per template);
    learnable-context placeholders are the same in every class's row, so equal rows mean equal class tokens.
    """
    if not texts:
        return
    n_cls, ctx_len = len(classnames), token_ids.shape[1]
    ids = token_ids.cpu()
    per_class = len(texts) // n_cls
    full = (ids[:, -1] != 0).nonzero().flatten().tolist()  # only rows without padding can have been cut
    need = {i: len(tokenizer.encode(texts[i])) + 2 for i in full}  # + start and end tokens
    cut = sorted({i // per_class for i, n in need.items() if n > ctx_len})
    if cut:
        logger.warning('the prompts of %d of %d classes do not fit the context length %d of the text encoder '
                       '(the longest needs %d tokens) and were truncated: %s', len(cut), n_cls, ctx_len,
                       max(need.values()), _some([classnames[c] for c in cut]))
    groups: dict[int, list[int]] = {}
    for c, g in enumerate(torch.unique(ids.reshape(n_cls, -1), dim=0, return_inverse=True)[1].tolist()):
        groups.setdefault(g, []).append(c)
    collisions = [m for m in groups.values() if len(m) > 1]
    if not collisions:
        return
    truncated = [not set(cut).isdisjoint(m) for m in collisions]
    causes = sorted({f'truncation by the context length {ctx_len}' if t else 'identical class names'
                     for t in truncated})
    if len(groups) == 1:
        raise ConfigError(
            f'the prompts of all {n_cls} classes are identical after tokenization ({causes[0]}), so the classifier '
            'cannot tell the classes apart',
            where=f'model.prompt_learner prompts such as {texts[0]!r} for the classes {_some(classnames)}',
            fix=('use shorter class names or templates, or a backbone with a longer context than '
                 f'{ctx_len} tokens') if truncated[0] else 'give the classes distinct names')
    logger.warning('%d groups of classes have identical prompts after tokenization (%s), so the classifier cannot '
                   'tell the classes of a group apart: %s%s', len(collisions), ' and '.join(causes),
                   '; '.join(f'[{_some([classnames[c] for c in m])}]' for m in collisions[:4]),
                   ' ...' if len(collisions) > 4 else '')
