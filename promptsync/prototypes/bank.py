"""``PrototypeBank``: offline per-class token statistics and visual prototypes, stored as safetensors.

Per configured vision layer ``l``: ``mean.layer{l}`` and ``var.layer{l}`` of shape ``[K, T, D]`` (per token and
channel, PromptAlign's statistics) or ``[K, D]`` (``token_stats='pooled'``: over tokens and images), plus
``counts [K]`` and ``visual [K, E]`` (normalised mean of the normalised image embeddings of each class).
A bank with one class (``K = 1``) is exactly PromptAlign's class-agnostic source statistics, and any
per-class bank pools into it (:meth:`global_stats`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F

from promptsync.datasets.base import LabelSpace
from promptsync.errors import CorruptFileError
from promptsync.utils.files import read_safetensors, read_safetensors_metadata, require_file, write_safetensors

from .accumulator import combine_classes

FORMAT = 'promptsync-prototypes'
TOKEN_STATS = ('per_token', 'pooled')
WHAT = 'prototype bank'
HOW_TO_MAKE = 'python tools/compute_prototypes.py CONFIG (see docs/method.md)'


@dataclass
class PrototypeBank:
    layers: tuple[int, ...]
    mean: dict[int, torch.Tensor]
    var: dict[int, torch.Tensor]
    counts: torch.Tensor
    visual: torch.Tensor | None
    label_space: LabelSpace
    token_stats: str = 'per_token'
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return int(self.counts.numel())

    def check_layers(self, layers, who: str) -> None:
        missing = [layer for layer in layers if layer not in self.mean]
        if missing:
            raise KeyError(f'{who} needs vision layers {list(layers)} but the prototype file has {list(self.layers)}; '
                           f'recompute it with prototypes.layers covering {missing}')

    def global_stats(self, layers) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor]]:
        """Class-agnostic mean/variance per layer (pooled over classes by their counts)."""
        self.check_layers(layers, 'the class-agnostic statistics')
        pooled = {layer: combine_classes(self.counts, self.mean[layer].double(), self.var[layer].double())
                  for layer in layers}
        return ({k: v[0].float() for k, v in pooled.items()}, {k: v[1].float() for k, v in pooled.items()})

    def global_visual(self) -> torch.Tensor | None:
        if self.visual is None:
            return None
        w = self.counts.to(self.visual.dtype).unsqueeze(1)
        return F.normalize((w * self.visual).sum(0), dim=-1)

    # ------------------------------------------------------------------ files
    def save(self, path: str | Path, extra_metadata: dict | None = None) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {'counts': self.counts.cpu()}
        for layer in self.layers:
            tensors[f'mean.layer{layer}'] = self.mean[layer].cpu().contiguous()
            tensors[f'var.layer{layer}'] = self.var[layer].cpu().contiguous()
        if self.visual is not None:
            tensors['visual'] = self.visual.cpu().contiguous()
        meta = dict(self.metadata, **{k: str(v) for k, v in (extra_metadata or {}).items()})
        meta.update(format=FORMAT, layers=json.dumps(list(self.layers)), token_stats=self.token_stats,
                    class_names=json.dumps(list(self.label_space.names)),
                    class_ids=json.dumps(list(self.label_space.ids) if self.label_space.ids else None))
        write_safetensors(tensors, path, meta)  # atomic; the same bank gives the same bytes
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = 'cpu') -> 'PrototypeBank':
        path = require_file(path, WHAT, fix=f'compute it with {HOW_TO_MAKE}')
        fix = f'delete it and compute it again with {HOW_TO_MAKE}'
        meta = read_safetensors_metadata(path, WHAT, fix)
        if meta.get('format') != FORMAT:
            raise CorruptFileError(f'{path} is not a promptsync prototype bank (format={meta.get("format")})',
                                   where=str(path), fix=f'point prototypes.file at a bank made by {HOW_TO_MAKE}')
        tensors, meta = read_safetensors(path, WHAT, fix, device=device)
        try:
            layers = tuple(json.loads(meta['layers']))
            mean = {layer: tensors[f'mean.layer{layer}'] for layer in layers}
            var = {layer: tensors[f'var.layer{layer}'] for layer in layers}
            ids = json.loads(meta.get('class_ids', 'null'))
            space = LabelSpace(tuple(json.loads(meta['class_names'])), tuple(ids) if ids else None)
            counts = tensors['counts']
        except (KeyError, TypeError, ValueError) as err:  # a missing tensor or metadata key, bad json
            raise CorruptFileError(f'prototype bank {path} is incomplete ({type(err).__name__}: {err})',
                                   where=str(path), fix=fix) from err
        return cls(layers, mean, var, counts, tensors.get('visual'), space, meta.get('token_stats', 'per_token'), meta)
