"""The tiny CLIP's pretraining from scratch on the shapes benchmark's captioned images (``tools/pretrain_tiny_clip.py``).

Config keys::

    model_name = 'ps-shapes-vit'                  # an open_clip model json (package model_configs or model_config)
    data = dict(per_style=dict(photo=16000, drawing=1000, clipart=1000), image_size=32, workers=2,
                eval_root='data/synthetic_shapes', eval_per_class=25)
    train = dict(epochs=24, batch_size=64, lr=1e-3, weight_decay=0.05, warmup_steps=300, grad_clip=1.0,
                 freeze_token_embedding=True, crop_pad=3, flip=True, max_logit_scale=100)
    output = dict(dir='promptsync/benchmarks/shapes/assets', name='ps-shapes-vit', dtype='float16')
    seed = 0

The result is an open_clip state dict (safetensors) that the ``OpenCLIP`` backbone loads as a local
checkpoint, and ``<name>.json`` with its provenance: config, seed, generator version, data counts, the
per-epoch log and the zero-shot accuracy of every domain, measured through the backbone path.
"""
from __future__ import annotations

import json
import math
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.config import Config

from promptsync import __version__
from promptsync.benchmarks.shapes import DOMAINS, SyntheticShapes, class_names
from promptsync.benchmarks.shapes.captioned import render_captioned
from promptsync.benchmarks.shapes.dataset import GENERATOR_VERSION

from .clip_loss import multi_positive_clip_loss, unique_captions
from promptsync.errors import NonFiniteError
from promptsync.models.backbones.openclip import register_model_configs
from promptsync.utils.files import write_safetensors
from promptsync.utils.hashing import file_sha256
from promptsync.utils.logging import get_logger
from promptsync.utils.seeding import seed_everything

logger = get_logger('pretrain')
ZERO_SHOT_TEMPLATE = 'a photo of a {}.'


def _augment(x: torch.Tensor, pad: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random translation (replicate padding) and horizontal flip of a uint8 batch ``[B, 3, H, W]``."""
    b, _, h, w = x.shape
    out = x
    if pad:
        xp = F.pad(x.float(), (pad, pad, pad, pad), mode='replicate')
        oy = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
        ox = torch.randint(0, 2 * pad + 1, (b,), generator=gen)
        rows = (oy[:, None] + torch.arange(h))[:, None, :, None].expand(b, 3, h, w + 2 * pad)
        out = xp.gather(2, rows)
        cols = (ox[:, None] + torch.arange(w))[:, None, None, :].expand(b, 3, h, w)
        out = out.gather(3, cols)
    if flip:
        mask = torch.rand(b, generator=gen) < 0.5
        out = torch.where(mask[:, None, None, None], out.flip(-1), out)
    return out


def _lr(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))


@torch.no_grad()
def zero_shot(model, tokenizer, images: torch.Tensor, labels: torch.Tensor, normalize) -> float:
    was = model.training
    model.eval()
    text = F.normalize(model.encode_text(tokenizer([ZERO_SHOT_TEMPLATE.format(c) for c in class_names()])), dim=-1)
    feats = torch.cat([F.normalize(model.encode_image(normalize(images[s:s + 512])), dim=-1)
                       for s in range(0, len(images), 512)])
    model.train(was)
    return 100.0 * ((feats @ text.t()).argmax(1) == labels).float().mean().item()


def _eval_sets(data_cfg: dict, seed: int, split: str, per_class: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    from promptsync.datasets.loading import load_rgb
    out = {}
    for domain in DOMAINS:
        ds = SyntheticShapes(data_cfg['eval_root'], domain=domain, split=split, per_class=per_class,
                             image_size=data_cfg.get('image_size', 32), seed=seed, workers=data_cfg.get('workers', 2))
        imgs = np.stack([np.asarray(load_rgb(d.path)) for d in ds.samples])
        out[domain] = (torch.from_numpy(imgs).permute(0, 3, 1, 2).contiguous(),
                       torch.tensor([d.label for d in ds.samples]))
    return out


class CLIPPretraining:
    """The pieces of the tiny CLIP's pretraining, built from the config; the epochs are run by the engine's
    :class:`~promptsync.engine.loops.CLIPPretrainLoop` (progress, hooks).

    One generator seeded with ``seed`` draws every epoch's order and every augmentation, in the order the steps
    run, so a run is reproducible.
    """

    def __init__(self, cfg: Config):
        import open_clip
        self.cfg, self.seed = cfg, int(cfg.get('seed', 0))
        seed_everything(self.seed)
        register_model_configs()
        if cfg.get('model_config'):
            register_model_configs(cfg.model_config)
        self.data_cfg, self.tcfg, self.ocfg = dict(cfg.data), dict(cfg.train), dict(cfg.output)
        self.model = open_clip.create_model(cfg.model_name)
        self.tokenizer = open_clip.get_tokenizer(cfg.model_name)
        pp = open_clip.get_model_preprocess_cfg(self.model)
        self.mean = torch.tensor(pp['mean']).view(1, 3, 1, 1)
        self.std = torch.tensor(pp['std']).view(1, 3, 1, 1)
        t0 = time.time()
        data = render_captioned(dict(self.data_cfg['per_style']), self.seed, self.data_cfg.get('image_size', 32),
                                self.data_cfg.get('workers', 2))
        self.images = torch.from_numpy(data.images).permute(0, 3, 1, 2).contiguous()
        self.token_ids = self.tokenizer(data.captions)
        self.val = _eval_sets(self.data_cfg, self.seed, 'val', self.data_cfg.get('eval_per_class', 25))
        logger.info('rendered %d captioned images (%s) and the val sets in %.0f s', len(self.images),
                    dict(self.data_cfg['per_style']), time.time() - t0)
        tcfg, model = self.tcfg, self.model
        if tcfg.get('freeze_token_embedding', True):
            model.token_embedding.weight.requires_grad_(False)
        decay = [p for n, p in model.named_parameters() if p.requires_grad and p.ndim >= 2 and 'positional' not in n]
        no_decay = [p for n, p in model.named_parameters()
                    if p.requires_grad and not (p.ndim >= 2 and 'positional' not in n)]
        self.opt = torch.optim.AdamW([dict(params=decay, weight_decay=tcfg.get('weight_decay', 0.05)),
                                      dict(params=no_decay, weight_decay=0.0)], lr=tcfg['lr'])
        self.batch_size, self.epochs = int(tcfg['batch_size']), int(tcfg['epochs'])
        self.steps_per_epoch = len(self.images) // self.batch_size
        self.total = self.steps_per_epoch * self.epochs
        self.gen = torch.Generator().manual_seed(self.seed)
        self.max_scale = math.log(tcfg.get('max_logit_scale', 100))
        self.step = 0
        model.train()

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() / 255 - self.mean) / self.std

    def epoch_order(self) -> torch.Tensor:
        return torch.randperm(len(self.images), generator=self.gen)

    def train_step(self, idx: torch.Tensor) -> float:
        tcfg, model = self.tcfg, self.model
        x = self.normalize(_augment(self.images[idx], tcfg.get('crop_pad', 3), tcfg.get('flip', True), self.gen))
        uniq, inverse = unique_captions(self.token_ids[idx])
        for group in self.opt.param_groups:
            group['lr'] = _lr(self.step, self.total, tcfg['lr'], tcfg.get('warmup_steps', 300))
        img_f = F.normalize(model.encode_image(x), dim=-1)
        txt_f = F.normalize(model.encode_text(uniq), dim=-1)
        loss = multi_positive_clip_loss(img_f, txt_f, inverse, model.logit_scale.exp())
        if not bool(torch.isfinite(loss.detach())):
            raise NonFiniteError(f'the pretraining loss became non-finite ({float(loss):.4g}) at step {self.step}',
                                 fix='lower train.lr or train.grad_clip; nothing was saved')
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), tcfg.get('grad_clip', 1.0))
        self.opt.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, self.max_scale)
        self.step += 1
        return float(loss.detach())

    def evaluate(self) -> dict[str, float]:
        return {d: round(zero_shot(self.model, self.tokenizer, *self.val[d], self.normalize), 2) for d in DOMAINS}

    def save(self, log: list[dict], train_seconds: float) -> Path:
        """The checkpoint (safetensors, ``output.dtype``) and its provenance json; returns the checkpoint."""
        import open_clip
        cfg, ocfg = self.cfg, self.ocfg
        out_dir = Path(ocfg['dir'])
        out_dir.mkdir(parents=True, exist_ok=True)
        ckpt = out_dir / f"{ocfg['name']}.safetensors"
        dtype = {'float16': torch.float16, 'float32': torch.float32}[ocfg.get('dtype', 'float16')]
        state = {k: v.detach().to(dtype).contiguous() for k, v in self.model.state_dict().items()}
        write_safetensors(state, ckpt, dict(model_name=cfg.model_name, seed=str(self.seed),
                                            generator=GENERATOR_VERSION))
        metrics = evaluate_checkpoint(cfg.model_name, ckpt, self.data_cfg, self.seed)
        provenance: dict[str, Any] = dict(
            model_name=cfg.model_name, checkpoint=ckpt.name, sha256=file_sha256(ckpt),
            size_bytes=ckpt.stat().st_size, dtype=ocfg.get('dtype', 'float16'), seed=self.seed,
            generator_version=GENERATOR_VERSION, data=dict(self.data_cfg, images=len(self.images)), train=self.tcfg,
            train_seconds=round(train_seconds, 1), epochs=log, zero_shot=metrics,
            template=ZERO_SHOT_TEMPLATE, versions=dict(promptsync=__version__, torch=torch.__version__,
                                                        open_clip=open_clip.__version__,
                                                        python=platform.python_version()),
            created=time.strftime('%Y-%m-%dT%H:%M:%S'))
        (out_dir / f"{ocfg['name']}.json").write_text(json.dumps(provenance, indent=2) + '\n')
        logger.info('wrote %s (%.1f MB); zero-shot %s', ckpt, ckpt.stat().st_size / 1e6, metrics)
        return ckpt


def evaluate_checkpoint(model_name: str, ckpt: Path, data_cfg: dict, seed: int) -> dict[str, dict[str, float]]:
    """Zero-shot top-1 per domain on the val and test splits, loading ``ckpt`` through the ``OpenCLIP`` backbone."""
    from promptsync.models.backbones import OpenCLIP
    backbone = OpenCLIP(model_name, pretrained=str(ckpt), precision='fp32')
    model = backbone.model
    tokenizer = backbone.tokenizer
    pp = backbone.preprocess_cfg
    mean = torch.tensor(pp['mean']).view(1, 3, 1, 1)
    std = torch.tensor(pp['std']).view(1, 3, 1, 1)
    out = {}
    for split, per_class in (('val', data_cfg.get('eval_per_class', 25)), ('test', data_cfg.get('test_per_class', 50))):
        sets = _eval_sets(data_cfg, seed, split, per_class)
        out[split] = {d: round(zero_shot(model, tokenizer, *sets[d], lambda x: (x.float() / 255 - mean) / std), 2)
                      for d in DOMAINS}
    return out
