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
from safetensors import safe_open
from safetensors.torch import save_file

from promptsync.datasets.base import LabelSpace

from .accumulator import combine_classes

FORMAT = 'promptsync-prototypes'
TOKEN_STATS = ('per_token', 'pooled')


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
        save_file(tensors, str(path), metadata=meta)
        return path

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = 'cpu') -> 'PrototypeBank':
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f'prototype file {path} does not exist; compute it with '
                                    'python tools/compute_prototypes.py CONFIG (see docs/method.md)')
        with safe_open(str(path), framework='pt', device=str(device)) as fh:
            meta = dict(fh.metadata() or {})
            if meta.get('format') != FORMAT:
                raise ValueError(f'{path} is not a promptsync prototype file (format={meta.get("format")})')
            layers = tuple(json.loads(meta['layers']))
            mean = {layer: fh.get_tensor(f'mean.layer{layer}') for layer in layers}
            var = {layer: fh.get_tensor(f'var.layer{layer}') for layer in layers}
            counts = fh.get_tensor('counts')
            visual = fh.get_tensor('visual') if 'visual' in fh.keys() else None
        ids = json.loads(meta.get('class_ids', 'null'))
        space = LabelSpace(tuple(json.loads(meta['class_names'])), tuple(ids) if ids else None)
        return cls(layers, mean, var, counts, visual, space, meta.get('token_stats', 'per_token'), meta)
