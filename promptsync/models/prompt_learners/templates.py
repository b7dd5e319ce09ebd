"""Hand-crafted prompts (zero-shot CLIP, single template or a template ensemble); nothing to learn."""
from __future__ import annotations

from typing import Sequence

import torch

from promptsync.datasets.resources import load_templates
from promptsync.registry import PROMPT_LEARNERS

from .base import PromptLearner, Prompts, TextPrompts, check_class_prompts, clean_classname


@PROMPT_LEARNERS.register_module()
class TemplatePrompts(PromptLearner):
    """``templates``: a shipped set ('single', 'imagenet80'), a file, or a list of strings with ``{}``.

    With several templates the classifier averages the normalised features of a class's prompts
    (CLIP's prompt ensembling).
    """

    def __init__(self, backbone, templates: str | Sequence[str] = 'single', classnames: list[str] | None = None):
        super().__init__(backbone)
        self.templates = load_templates(templates)
        self.register_buffer('token_ids', torch.zeros(0, backbone.context_length, dtype=torch.long),
                             persistent=False)
        self._other_ids: dict[tuple, torch.Tensor] = {}
        if classnames is not None:
            self.set_classnames(classnames)

    def _tokenize(self, classnames: list[str]) -> torch.Tensor:
        texts = [t.format(clean_classname(c)) for c in classnames for t in self.templates]
        token_ids = self.backbone.tokenize(texts)
        check_class_prompts(self.backbone.tokenizer, classnames, texts, token_ids)
        return token_ids

    def set_classnames(self, classnames: list[str]) -> None:
        self.token_ids = self._tokenize(classnames)
        self.classnames = list(classnames)
        self._other_ids = {}

    def prompts_for(self, classnames: list[str]) -> Prompts:
        key = tuple(classnames)
        if key not in self._other_ids:  # keep one extra label space (losses ask for it every step)
            self._other_ids = {key: self._tokenize(list(classnames))}
        return Prompts(text=TextPrompts(token_ids=self._other_ids[key], n_templates=len(self.templates)))

    def forward(self) -> Prompts:
        return Prompts(text=TextPrompts(token_ids=self.token_ids, n_templates=len(self.templates)))
