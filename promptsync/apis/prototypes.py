"""``compute_prototypes``: stream a proxy source set through the frozen, prompted vision encoder.

Config keys: ``model`` (the method's backbone + prompt learner + ``prompt_checkpoint``), ``proxy_data``
(``dataset``, ``batch_size``, ``num_workers``, ``max_samples``) and ``prototypes``::

    prototypes = dict(file='.../imagenet_train.safetensors', layers=(0, 1), per_class=True,
                      token_stats='per_token', save_every=200, dtype='float32', views=None)

Statistics are accumulated per batch (no image kept in memory); every ``save_every`` batches the running
state goes to ``<file>.partial.safetensors``, from which an interrupted run resumes.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from mmengine.config import Config
from safetensors import safe_open
from safetensors.torch import save_file
from torch.utils.data import DataLoader
from tqdm import tqdm

from promptsync import __version__
from promptsync.datasets import ViewDataset
from promptsync.models import build_model
from promptsync.prototypes import ClassStatsAccumulator, PrototypeBank
from promptsync.prototypes.bank import TOKEN_STATS
from promptsync.registry import DATASETS, TRANSFORMS
from promptsync.utils.logging import get_logger, setup_logging
from promptsync.utils.seeding import seed_everything

from .test import resolve_device, select_indices

logger = get_logger('prototypes')
DTYPES = {'float32': torch.float32, 'float16': torch.float16, 'bfloat16': torch.bfloat16}


def prototypes_fingerprint(source: Config | str | Path) -> str | None:
    """The fingerprint a config would give its prototype file, or the one a file records (None if absent)."""
    if isinstance(source, Config):
        return _fingerprint(source, dict(source.get('prototypes') or {}))
    path = Path(source)
    if not path.is_file():
        return None
    with safe_open(str(path), framework='pt') as fh:
        return (fh.metadata() or {}).get('fingerprint')


def _fingerprint(cfg: Config, pcfg: dict) -> str:
    import hashlib
    keep = dict(model=cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else dict(cfg.model),
                dataset=dict(cfg.proxy_data.dataset), max_samples=cfg.proxy_data.get('max_samples'),
                seed=cfg.get('seed', 0), **{k: pcfg.get(k) for k in ('layers', 'per_class', 'token_stats', 'views')})
    return hashlib.sha256(json.dumps(keep, sort_keys=True, default=str).encode()).hexdigest()[:16]


class _State:
    """Accumulators of every layer + visual prototype sums; lazily shaped by the first batch."""

    def __init__(self, num_classes: int, layers, token_stats: str, device):
        self.k, self.layers, self.token_stats, self.device = num_classes, tuple(layers), token_stats, device
        self.acc: dict[int, ClassStatsAccumulator] = {}
        self.visual_sum: torch.Tensor | None = None
        self.visual_count = torch.zeros(num_classes, dtype=torch.long, device=device)

    def update(self, tokens: dict[int, torch.Tensor], features: torch.Tensor, labels: torch.Tensor) -> None:
        for layer in self.layers:
            x = tokens[layer].detach()
            lab = labels
            if self.token_stats == 'pooled':  # every token is a sample of the class distribution
                lab = labels.repeat_interleave(x.shape[1])
                x = x.reshape(-1, x.shape[-1])
            if layer not in self.acc:
                self.acc[layer] = ClassStatsAccumulator(self.k, x.shape[1:], device=self.device)
            self.acc[layer].update(x, lab)
        feats = F.normalize(features.detach().double(), dim=-1)
        if self.visual_sum is None:
            self.visual_sum = torch.zeros(self.k, feats.shape[1], dtype=torch.float64, device=self.device)
        self.visual_sum.index_add_(0, labels, feats)
        self.visual_count += torch.bincount(labels, minlength=self.k)

    def tensors(self) -> dict[str, torch.Tensor]:
        out = {'visual_sum': self.visual_sum, 'visual_count': self.visual_count}
        for layer, acc in self.acc.items():
            out.update({f'{k}.layer{layer}': v for k, v in acc.state_dict().items()})
        return {k: v.cpu().contiguous() for k, v in out.items()}

    def load(self, tensors: dict[str, torch.Tensor]) -> None:
        self.visual_sum = tensors['visual_sum'].to(self.device)
        self.visual_count = tensors['visual_count'].to(self.device)
        for layer in self.layers:
            shape = tensors[f'mean.layer{layer}'].shape[1:]
            self.acc[layer] = ClassStatsAccumulator(self.k, shape, device=self.device)
            self.acc[layer].load_state_dict({k: tensors[f'{k}.layer{layer}'] for k in ('count', 'mean', 'm2')})


def compute_prototypes(cfg: Config, resume: bool = True) -> Path:
    """Compute and save the prototype bank described by ``cfg``; returns the file path."""
    pcfg = dict(cfg.get('prototypes') or {})
    if 'proxy_data' not in cfg or not pcfg.get('file'):
        raise KeyError("the config needs proxy_data=dict(dataset=...) and prototypes=dict(file=..., layers=...)")
    token_stats = pcfg.get('token_stats', 'per_token')
    if token_stats not in TOKEN_STATS:
        raise ValueError(f"prototypes.token_stats='{token_stats}' is not one of {TOKEN_STATS}")
    out_path = Path(pcfg['file'])
    partial = out_path.with_name(out_path.name + '.partial.safetensors')
    out_path.parent.mkdir(parents=True, exist_ok=True)
    setup_logging(cfg.get('log_level', 'INFO'))
    seed = int(cfg.get('seed', 0))
    seed_everything(seed)
    device = resolve_device(cfg.get('device', 'auto'))
    data_cfg = dict(cfg.proxy_data)
    dataset = DATASETS.build(dict(data_cfg['dataset']))
    model = build_model(cfg.model, dataset.classnames, device)
    backbone = model.backbone
    pp = backbone.preprocess_cfg
    views = TRANSFORMS.build(dict(pcfg.get('views') or dict(type='OriginalView')),
                             default_args=dict(image_size=pp['size'], mean=pp['mean'], std=pp['std'],
                                               interpolation=pp['interpolation']))
    layers = tuple(int(x) for x in pcfg.get('layers', (0, 1)))
    per_class = bool(pcfg.get('per_class', True))
    indices = select_indices(len(dataset), data_cfg.get('max_samples'), None, seed)
    fp = _fingerprint(cfg, pcfg)
    state = _State(dataset.num_classes if per_class else 1, layers, token_stats, device)
    done = 0
    if partial.exists():
        with safe_open(str(partial), framework='pt') as fh:
            meta = dict(fh.metadata() or {})
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        if resume and meta.get('fingerprint') == fp:
            state.load(tensors)
            done = int(meta['processed'])
            logger.info('resuming prototypes from %s: %d of %d images done', partial, done, len(indices))
        elif resume:
            raise RuntimeError(f'{partial} belongs to another configuration; delete it or pass --no-resume')
    loader = DataLoader(ViewDataset(dataset, views, seed, indices[done:]), batch_size=int(data_cfg.get('batch_size', 32)),
                        shuffle=False, num_workers=int(data_cfg.get('num_workers', 0)))
    save_every = int(pcfg.get('save_every', 200))
    started = time.time()
    with torch.no_grad():
        prompts = model.prompts()
        bar = tqdm(total=len(indices), initial=done, desc='prototypes', unit='img')
        for step, batch in enumerate(loader, 1):
            images = batch['views'][:, 0].to(device)
            labels = batch['label'].to(device) if per_class else torch.zeros(len(images), dtype=torch.long, device=device)
            with backbone.taps('vision', layers) as taps:
                feats = model.image_features(images, prompts)
            state.update(taps.tokens(), feats, labels)
            done += len(images)
            bar.update(len(images))
            if step % save_every == 0:
                save_file(state.tensors(), str(partial), metadata=dict(fingerprint=fp, processed=str(done)))
        bar.close()
    if state.visual_sum is None:
        raise RuntimeError('no image was processed; is the proxy dataset empty?')
    dtype = DTYPES[pcfg.get('dtype', 'float32')]
    space = dataset.label_space if per_class else type(dataset.label_space)(('all classes',), None)
    counts = state.visual_count.cpu()
    bank = PrototypeBank(layers=layers, mean={lay: state.acc[lay].mean.to(dtype).cpu() for lay in layers},
                         var={lay: state.acc[lay].variance().to(dtype).cpu() for lay in layers}, counts=counts,
                         visual=F.normalize(state.visual_sum.float(), dim=-1).cpu(), label_space=space,
                         token_stats=token_stats)
    missing = int((counts == 0).sum())
    if missing:
        logger.warning('%d proxy classes have no image: their statistics are zeros (their count is 0)', missing)
    ckpt = model.prompt_checkpoint or {}
    meta: dict[str, Any] = dict(
        backbone=backbone.model_name, pretrained=str(backbone.pretrained), precision=backbone.precision,
        prompt_learner=type(model.prompt_learner).__name__,
        prompt_learner_cfg=json.dumps(dict(cfg.model.get('prompt_learner') or {}), default=str),
        prompt_checkpoint=ckpt.get('path', 'none (initial prompts)'), prompt_checkpoint_sha256=ckpt.get('sha256', ''),
        tap_point='input', dataset=getattr(dataset, 'name', type(dataset).__name__),
        dataset_root=str(getattr(dataset, 'root', '')), images=str(done), per_class=str(per_class),
        classes_without_images=str(missing), views=json.dumps(pcfg.get('views') or dict(type='OriginalView')),
        seed=str(seed), fingerprint=fp, promptsync=__version__, seconds=f'{time.time() - started:.1f}',
        created=time.strftime('%Y-%m-%dT%H:%M:%S'))
    bank.save(out_path, meta)
    if partial.exists():
        partial.unlink()
    logger.info('wrote %s (%d classes, layers %s, %s statistics, %d images)', out_path, bank.num_classes, layers,
                token_stats, done)
    return out_path
