"""``run_test``: build everything a TTA evaluation needs from a resolved config and run it.

Config keys: ``model`` (backbone, prompt_learner), ``data`` (dataset, batch_size, num_workers,
max_samples, shard), ``tta`` (method type, ``views`` and its stages), ``metrics``, ``hooks``,
``seed``, ``device``, ``work_dir``.
"""
from __future__ import annotations

import platform
import sys
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from mmengine.config import Config
from tabulate import tabulate

from promptsync import __version__
from promptsync.datasets import ViewDataset
from promptsync.datasets.doctor_labels import check_label_map
from promptsync.models import build_model
from promptsync.registry import DATASETS, METRICS, TRANSFORMS, TTA_METHODS
from promptsync.tta.hooks import HookList
from promptsync.tta.runner import TTARunner
from promptsync.utils.config import fingerprint
from promptsync.utils.logging import get_logger, setup_logging
from promptsync.utils.seeding import seed_everything

logger = get_logger('test')


def resolve_device(device: str) -> torch.device:
    if device == 'auto':
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    dev = torch.device(device)
    if dev.type == 'cuda' and not torch.cuda.is_available():
        raise RuntimeError(f"device='{device}' but CUDA is not available; use device='cpu' or 'auto'")
    return dev


def select_indices(n: int, max_samples: int | None, shard: tuple[int, int] | None, seed: int) -> list[int]:
    """All indices, or a seeded random subset of ``max_samples`` (kept in dataset order), then shard ``i/n``."""
    indices = list(range(n))
    if max_samples is not None and max_samples < n:
        indices = sorted(np.random.default_rng(seed).permutation(n)[:max_samples].tolist())
    if shard is not None:
        rank, world = shard
        if not 0 <= rank < world:
            raise ValueError(f'shard {rank}/{world}: need 0 <= rank < world')
        indices = indices[rank::world]
    return indices


def _versions() -> dict[str, str]:
    import open_clip
    return dict(promptsync=__version__, python=platform.python_version(), torch=torch.__version__,
                open_clip=open_clip.__version__)


@dataclass
class Evaluation:
    """Everything an evaluation run is built from (see :func:`build_evaluation`)."""
    dataset: Any
    model: Any
    views: Any
    hooks: HookList
    method: Any
    metrics: list
    indices: list[int]
    device: torch.device
    seed: int
    method_name: str


def build_evaluation(cfg: Config, check_data: bool = True, extra_hooks: Sequence = ()) -> Evaluation:
    """Build dataset, model, views, hooks, TTA method and metrics from ``cfg`` (no files written, nothing run)."""
    seed = int(cfg.get('seed', 0))
    seed_everything(seed)
    device = resolve_device(cfg.get('device', 'auto'))
    data_cfg = dict(cfg.data)
    dataset = DATASETS.build(dict(data_cfg['dataset']))
    check_label_map(dataset, enabled=check_data)  # refuses an inconsistent label map (LabelMapError)
    logger.info('dataset %s: %d images, %d classes', getattr(dataset, 'name', type(dataset).__name__),
                len(dataset), dataset.num_classes)
    model = build_model(cfg.model, dataset.classnames, device)
    tta_cfg = dict(cfg.tta)
    views_cfg = dict(tta_cfg.pop('views', None) or dict(type='OriginalView'))
    pp = model.backbone.preprocess_cfg
    views = TRANSFORMS.build(views_cfg, default_args=dict(image_size=pp['size'], mean=pp['mean'], std=pp['std'],
                                                          interpolation=pp['interpolation']))
    hooks = HookList(list(cfg.get('hooks', [])) + list(extra_hooks))
    method = TTA_METHODS.build(tta_cfg, default_args=dict(
        model=model, hooks=hooks, seed=seed, label_space=dataset.label_space,
        prototype_file=(cfg.get('prototypes') or {}).get('file')))
    metrics = [METRICS.build(dict(m)) for m in cfg.get('metrics', [dict(type='Accuracy', topk=(1, 5))])]
    shard = data_cfg.get('shard')
    indices = select_indices(len(dataset), data_cfg.get('max_samples'), tuple(shard) if shard else None, seed)
    name = tta_cfg['type'] if isinstance(tta_cfg['type'], str) else tta_cfg['type'].__name__
    return Evaluation(dataset, model, views, hooks, method, metrics, indices, device, seed, name)


def run_test(cfg: Config, resume: bool = True, print_table: bool = True, check_data: bool = True) -> dict[str, Any]:
    """Run the evaluation described by ``cfg``; returns the dict written to ``metrics.json``.

    ``print_table=False`` keeps stdout for the caller (e.g. an ablation grid prints one table of all runs).
    """
    work_dir = Path(cfg.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(cfg.get('log_level', 'INFO'), str(work_dir / 'log.txt'))
    cfg.dump(str(work_dir / 'config.py'))
    ev = build_evaluation(cfg, check_data)
    dataset, model, method, seed, data_cfg = ev.dataset, ev.model, ev.method, ev.seed, dict(cfg.data)
    source = Path(cfg.filename or 'run')
    run_name = cfg.get('run_name') or f'{source.parent.name}/{source.stem}'
    info = dict(run_name=run_name, dataset=getattr(dataset, 'name', type(dataset).__name__),
                method=ev.method_name,
                prompt_learner=type(model.prompt_learner).__name__, backbone=model.backbone.model_name,
                pretrained=str(model.backbone.pretrained), seed=seed, device=str(ev.device), versions=_versions(),
                command=' '.join(sys.argv))
    runner = TTARunner(method, ViewDataset(dataset, ev.views, seed, ev.indices), ev.metrics, ev.hooks, work_dir,
                       run_name, fingerprint(cfg), batch_size=int(data_cfg.get('batch_size', 1)),
                       num_workers=int(data_cfg.get('num_workers', 0)), resume=resume, run_info=info)
    result = runner.run()
    if print_table:
        print(results_table(info, result))
    (work_dir / 'results.md').write_text(results_table(info, result, fmt='github') + '\n')
    logger.info('results in %s', work_dir)
    return dict(info, **result)


def results_table(info: dict, result: dict, fmt: str = 'simple') -> str:
    row = dict(run=info['run_name'], dataset=info['dataset'], method=info['method'],
               prompts=info['prompt_learner'], n=result['num_samples'])
    if result.get('num_skipped'):  # unreadable images: not in n, not in the metrics
        row['skipped'] = result['num_skipped']
    row.update({k: round(v, 2) for k, v in result['metrics'].items()})
    ms = result['timing']['tta_ms_per_sample']
    row['ms/img'] = round(ms, 1) if ms is not None else '-'
    return tabulate([row], headers='keys', tablefmt=fmt)
