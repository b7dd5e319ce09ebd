"""Shared plumbing of the prototype losses: load the bank, map it onto the test label space, pick the views."""
from __future__ import annotations

import torch

from promptsync.datasets.base import LabelSpace
from promptsync.errors import ConfigError
from promptsync.prototypes import PrototypeBank, TargetPrototypes, map_prototypes
from promptsync.utils.logging import get_logger

from .base import TTALoss

logger = get_logger('losses')


def token_statistics(tokens: torch.Tensor, pooled: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and biased variance of ``tokens [S, T, D]`` over the views (``[T, D]``), or over views and
    tokens (``[D]``) when ``pooled``."""
    x = tokens.float()
    if pooled:
        x = x.reshape(-1, x.shape[-1])
    mean = x.mean(dim=0)
    return mean, ((x - mean) ** 2).mean(dim=0)


def probability_views(ctx, include_original: bool) -> torch.Tensor:
    """The selected views, plus view 0 (the test image itself) when asked and not already selected."""
    idx = ctx.selected
    if include_original and not bool((idx == 0).any()):
        idx = torch.cat([idx, idx.new_zeros(1)])
    return idx


class PrototypeLoss(TTALoss):
    """Base of losses that read a :class:`PrototypeBank` mapped onto the test label space.

    Args:
        prototypes: a prototype file; ``None`` = the run's ``prototypes.file`` (``resources['prototypes']``).
        layers: vision layers (block inputs) whose statistics are used.
        label_space: how test classes find their prototypes (see :mod:`promptsync.prototypes.label_mapping`).
        match_top_m, match_temperature: the ``'text_similarity'`` mapping's parameters.
    """

    #: the Runner checks the run's bank (``prototypes.file``) for losses that read it (``prototypes=None``)
    needs_prototypes = True

    def __init__(self, prototypes: str | None = None, layers=(0, 1), label_space: str = 'auto',
                 match_top_m: int = 5, match_temperature: float = 0.01):
        super().__init__()
        self.prototypes = prototypes
        self.vision_layers = tuple(int(x) for x in layers)
        self.label_space_mode = label_space
        self.match_top_m, self.match_temperature = match_top_m, match_temperature
        self.bank: PrototypeBank | None = None
        self.target: TargetPrototypes | None = None
        self._summary: dict = {}

    def load_bank(self, model, resources=None) -> None:
        path = self.prototypes or (resources or {}).get('prototypes')
        if not path:
            raise ConfigError(f'{type(self).__name__} needs prototypes', where='prototypes.file',
                              fix='set prototypes.file in the config (and run tools/compute_prototypes.py) or pass '
                                  'prototypes=<file> to the loss')
        self.bank = PrototypeBank.load(path)
        space = getattr(model, 'label_space', None) or LabelSpace(tuple(model.classnames))
        learner = model.prompt_learner

        def text_features(names):
            return model.text_features(learner.prompts_for(names))
        self.target = map_prototypes(self.bank, space, self.vision_layers, self.label_space_mode, text_features,
                                     self.match_top_m, self.match_temperature, who=type(self).__name__)
        self.target = self.target.to(model.backbone.device)
        self._summary = dict(prototypes=str(path), **self.target.summary, **self._provenance(model))

    def _provenance(self, model) -> dict:
        meta = self.bank.metadata
        notes = {}
        if meta.get('backbone') and meta['backbone'] != model.backbone.model_name:
            notes['backbone_mismatch'] = f"{meta['backbone']} (prototypes) vs {model.backbone.model_name} (run)"
        run_sha = (model.prompt_checkpoint or {}).get('sha256', '')
        if meta.get('prompt_checkpoint_sha256', '') != run_sha:
            notes['prompt_checkpoint_mismatch'] = (f"prototypes were computed with {meta.get('prompt_checkpoint')}, "
                                                   f"the run starts from {(model.prompt_checkpoint or {}).get('path', 'initial prompts')}")
        for note in notes.values():
            logger.warning('%s: %s', type(self).__name__, note)
        return notes

    def check_tokens(self, stat: torch.Tensor, proto: torch.Tensor, layer: int) -> None:
        if tuple(stat.shape) != tuple(proto.shape[1:]):
            raise ValueError(f'layer {layer}: test statistics have shape {tuple(stat.shape)} but the prototypes '
                             f'{tuple(proto.shape[1:])}; were they computed with the same backbone, image size and '
                             'number of visual prompt tokens (and token_stats)?')

    @property
    def pooled(self) -> bool:
        return self.bank is not None and self.bank.token_stats == 'pooled'

    def summary(self) -> dict:
        return self._summary
