"""``compute_prototypes``: stream a proxy source set through the frozen, prompted vision encoder.

Config keys: ``model`` (the method's backbone + prompt learner + ``prompt_checkpoint``), ``proxy_data``
(``dataset``, ``batch_size``, ``num_workers``, ``max_samples``) and ``prototypes``::

    prototypes = dict(file='.../imagenet_train.safetensors', layers=(0, 1), per_class=True,
                      token_stats='per_token', save_every=200, dtype='float32', views=None)

Statistics are accumulated per batch (no image kept in memory); every ``save_every`` batches the running
state goes to ``<file>.partial.safetensors``, from which an interrupted run resumes.

Unreadable images (corrupt, truncated, empty, not an image) are skipped: the first is named in a log warning,
and the bank's metadata records ``images`` (those in the statistics), ``skipped_images`` and the first
``skipped_paths``. Resume continues after the last saved position of the image list; images skipped before it
are carried over in the partial file's metadata and not retried, so a resumed bank equals an uninterrupted one
(fix the files and pass ``--no-resume`` to include them).
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
from promptsync.datasets.view_dataset import SKIPPED_LISTED, collate_views
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
    done = 0                      # positions of ``indices`` consumed: images read + images skipped
    skipped, skipped_paths = 0, []  # unreadable images (count, the first SKIPPED_LISTED paths)
    if partial.exists():
        with safe_open(str(partial), framework='pt') as fh:
            meta = dict(fh.metadata() or {})
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}
        if resume and meta.get('fingerprint') == fp:
            state.load(tensors)
            done = int(meta['processed'])
            skipped, skipped_paths = int(meta.get('skipped', 0)), json.loads(meta.get('skipped_paths', '[]'))
            logger.info('resuming prototypes from %s: %d of %d images done (%d of them unreadable, not retried)',
                        partial, done, len(indices), skipped)
        elif resume:
            raise RuntimeError(f'{partial} belongs to another configuration; delete it or pass --no-resume')
    loader = DataLoader(ViewDataset(dataset, views, seed, indices[done:], skip_unreadable=True),
                        batch_size=int(data_cfg.get('batch_size', 32)), shuffle=False,
                        num_workers=int(data_cfg.get('num_workers', 0)), collate_fn=collate_views)
    save_every = int(pcfg.get('save_every', 200))
    started = time.time()
    with torch.no_grad():
        prompts = model.prompts()
        bar = tqdm(total=len(indices), initial=done, desc='prototypes', unit='img')
        for step, batch in enumerate(loader, 1):
            for rec in batch['skipped']:
                if not skipped:
                    logger.warning('skipping unreadable image %s (index %d): %s; the bank metadata counts every '
                                   'skipped image', rec['path'], rec['index'], rec['error'])
                skipped += 1
                if len(skipped_paths) < SKIPPED_LISTED:
                    skipped_paths.append(rec['path'])
            n = len(batch['index'])
            if n:
                images = batch['views'][:, 0].to(device)
                labels = batch['label'].to(device) if per_class else torch.zeros(n, dtype=torch.long, device=device)
                with backbone.taps('vision', layers) as taps:
                    feats = model.image_features(images, prompts)
                state.update(taps.tokens(), feats, labels)
            done += n + len(batch['skipped'])
            bar.update(n + len(batch['skipped']))
            if skipped:
                bar.set_postfix(skipped=skipped)
            if step % save_every == 0 and state.visual_sum is not None:
                save_file(state.tensors(), str(partial), metadata=dict(
                    fingerprint=fp, processed=str(done), skipped=str(skipped), skipped_paths=json.dumps(skipped_paths)))
        bar.close()
    if state.visual_sum is None:
        if skipped:
            raise RuntimeError(f'none of the {skipped} proxy images could be read (first: {skipped_paths[0]}); '
                               'check proxy_data.dataset.root and the files')
        raise RuntimeError('no image was processed; is the proxy dataset empty?')
    read = int(state.visual_count.sum())
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
        dataset_root=str(getattr(dataset, 'root', '')), images=str(read), skipped_images=str(skipped),
        skipped_paths=json.dumps(skipped_paths), per_class=str(per_class),
        classes_without_images=str(missing), views=json.dumps(pcfg.get('views') or dict(type='OriginalView')),
        seed=str(seed), fingerprint=fp, promptsync=__version__, seconds=f'{time.time() - started:.1f}',
        created=time.strftime('%Y-%m-%dT%H:%M:%S'))
    bank.save(out_path, meta)
    if partial.exists():
        partial.unlink()
    logger.info('wrote %s (%d classes, layers %s, %s statistics, %d images)', out_path, bank.num_classes, layers,
                token_stats, read)
    if skipped:
        logger.warning('%d of %d proxy images could not be read and were skipped (first: %s); the statistics are '
                       'over the other %d (metadata: skipped_images, skipped_paths)', skipped, len(indices),
                       skipped_paths[0], read)
    return out_path
