"""The prototype bank of a speed benchmark: the config's bank file when it exists, else a synthetic one.

A synthetic bank has the shapes and dtype of the real one — per class and layer the token mean and variance
(``[K, T, D]``, or ``[K, D]`` with ``token_stats='pooled'``), counts, visual prototypes ``[K, E]`` — with values
from the token statistics of a few benchmark images under the run's own model and prompts, moved per class by
seeded noise. It costs the losses exactly what a real bank costs; its values mean nothing, and the benchmark says
so (``synthetic_prototypes`` in the JSON and the table).
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F

from promptsync.datasets.base import LabelSpace
from promptsync.engine.resources import needs_prototypes
from promptsync.prototypes import PrototypeBank
from promptsync.registry import LOSSES
from promptsync.utils.config import lookup
from promptsync.utils.logging import get_logger
from promptsync.utils.seeding import derive_seed

logger = get_logger('speed')
DTYPES = {'float32': torch.float32, 'float16': torch.float16, 'bfloat16': torch.bfloat16}
SPREAD = 0.1  # per-class offset of the synthetic means, in token standard deviations


def bank_layers(tree: Mapping) -> tuple[int, ...]:
    """The vision layers the bank must hold: the config's ``prototypes.layers`` and every prototype loss's."""
    layers = {int(x) for x in lookup(tree, 'prototypes.layers') or (0, 1)}
    for loss in lookup(tree, 'tta.losses') or []:
        cls = LOSSES.get(loss.get('type')) if isinstance(loss.get('type'), str) else loss.get('type')
        if getattr(cls, 'needs_prototypes', False) and loss.get('layers') is not None:
            layers |= {int(x) for x in loss['layers']}
    return tuple(sorted(layers))


def existing_bank(tree: Mapping) -> str | None:
    """The config's bank file if the method reads one and it is on disk."""
    path = lookup(tree, 'prototypes.file')
    return str(path) if needs_prototypes(tree) and path and Path(str(path)).is_file() else None


@torch.no_grad()
def synthetic_bank(model, images: torch.Tensor, space: LabelSpace, layers, token_stats: str = 'per_token',
                   dtype: str = 'float32', seed: int = 0) -> PrototypeBank:
    """A bank for ``space`` shaped by a no-grad forward of ``images [M, 3, H, W]`` with vision taps."""
    backbone = model.backbone
    with backbone.taps('vision', layers) as taps:
        feats = model.image_features(images.to(backbone.device), model.prompts())
        tokens = taps.tokens()
    gen = torch.Generator().manual_seed(derive_seed(seed, 5))
    k, out_dtype = len(space), DTYPES[dtype]
    mean, var = {}, {}
    for layer in layers:
        x = tokens[layer].detach().float().cpu()
        if token_stats == 'pooled':
            x = x.reshape(-1, x.shape[-1])
        mu, s2 = x.mean(dim=0), x.var(dim=0, unbiased=False) + 1e-6
        mean[layer] = (mu + SPREAD * s2.sqrt() * torch.randn((k, *mu.shape), generator=gen)).to(out_dtype)
        var[layer] = (s2 * torch.exp(SPREAD * torch.randn((k, *s2.shape), generator=gen))).to(out_dtype)
    centre = F.normalize(feats.float().cpu(), dim=-1).mean(dim=0)
    visual = F.normalize(centre + SPREAD * torch.randn((k, centre.numel()), generator=gen), dim=-1)
    counts = torch.full((k,), images.shape[0], dtype=torch.long)
    return PrototypeBank(tuple(layers), mean, var, counts, visual, space, token_stats)


def write_synthetic_bank(path: str | Path, model, images: torch.Tensor, space: LabelSpace, tree: Mapping,
                         seed: int) -> Path:
    pcfg = dict(lookup(tree, 'prototypes') or {})
    layers = bank_layers(tree)
    bank = synthetic_bank(model, images, space, layers, pcfg.get('token_stats', 'per_token'),
                          pcfg.get('dtype', 'float32'), seed)
    ckpt = model.prompt_checkpoint or {}
    meta = dict(synthetic='true', backbone=model.backbone.model_name, images=str(images.shape[0]),
                prompt_checkpoint=ckpt.get('path', 'none (initial prompts)'),
                prompt_checkpoint_sha256=ckpt.get('sha256', ''),
                note='speed benchmark: shapes of a real bank, values from seeded noise around the token statistics '
                     'of a few benchmark images')
    logger.info('synthetic prototype bank: %d classes, layers %s, %s, %s (values are not a real bank)',
                len(space), layers, pcfg.get('token_stats', 'per_token'), pcfg.get('dtype', 'float32'))
    return bank.save(path, meta)
