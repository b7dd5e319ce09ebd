"""What a TTA evaluation is built from, checked before anything heavy runs.

:func:`build_evaluation` turns a config into dataset, model, views, TTA method and metrics (nothing written, no
sample run); :func:`check_bank` refuses a prototype bank that was not computed for the run's config.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import torch
from mmengine.config import Config

from promptsync.datasets.doctor_labels import check_label_map
from promptsync.errors import ProvenanceError
from promptsync.hooks import HookList
from promptsync.models import build_model
from promptsync.registry import DATASETS, METRICS, TTA_METHODS
from promptsync.tta.views import build_views
from promptsync.utils.files import read_safetensors_metadata
from promptsync.utils.logging import get_logger
from promptsync.utils.seeding import seed_everything

from ..provenance import differences, fingerprint, source_summary
from ..resources import needs_prototypes
from ..shards import select_indices
from ..stream import build_stream

logger = get_logger('test')
#: every run's metrics unless the config lists its own: accuracy, balanced (mean per-class) accuracy, calibration
#: and the collapse measures (configs/_base_/default_runtime.py holds the same list)
DEFAULT_METRICS = [dict(type='Accuracy', topk=(1, 5)), dict(type='MeanPerClassAccuracy'),
                   dict(type='ExpectedCalibrationError', bins=15), dict(type='PredictionCollapse')]


@dataclass
class Evaluation:
    dataset: Any
    model: Any
    views: Any
    hooks: HookList
    method: Any
    metrics: list
    indices: list[int]           # the selected samples (all shards), in stream order (data.stream)
    seed: int
    method_name: str
    stream: dict                 # what data.stream kept and how it is ordered ({} without data.stream)


def run_resources(cfg: Config) -> dict[str, str]:
    """The outside files the TTA method reads, by role (``'prototypes'``)."""
    tree = cfg.to_dict()
    if needs_prototypes(tree):
        return dict(prototypes=str(cfg.prototypes.file))
    return {}


def check_bank(cfg: Config, path: str) -> dict:
    """Refuse a bank whose recorded source (config fingerprint: model, prompts, proxy images, layers...) is not the
    one this config asks for; returns what was checked (recorded in ``run.json``)."""
    meta = read_safetensors_metadata(path, 'prototype bank')
    want = fingerprint(cfg, 'prototypes')
    got = meta.get('fingerprint')
    info = dict(path=str(path), fingerprint=got, expected=want, images=meta.get('images'))
    if (cfg.get('prototypes') or {}).get('verify', True) is False:
        logger.warning('prototypes.verify=False: the bank %s is used without checking that it was computed for '
                       'this config (recorded: %s, this config: %s)', path, got, want)
        return dict(info, verified=False)
    if meta.get('origin') == 'imported':  # PromptAlign's released statistics: bound to the model, not a fingerprint
        from promptsync.prototypes.imported import check_imported_bank
        return check_imported_bank(cfg, path, meta, info)
    if got != want:
        try:
            recorded = json.loads(meta.get('source') or '{}')
        except ValueError:
            recorded = {}
        diff = differences(recorded, source_summary(cfg)) if recorded else []
        detail = ('; differs in: ' + '; '.join(diff)) if diff else (
            '' if got else ' (the bank records no source: made by an older version or another tool)')
        raise ProvenanceError(
            f'the prototype bank {path} was computed from another source than this config describes (bank '
            f'{got}, config {want}){detail}',
            where='prototypes.file',
            fix=f'recompute it for this config: python tools/compute_prototypes.py {cfg.filename} (with the same '
                '--cfg-options; to keep the other bank, also set prototypes.file to a new path), or set '
                'prototypes.verify=False to use it anyway (recorded)')
    return dict(info, verified=True)


def build_evaluation(cfg: Config, device: torch.device | str, hooks: HookList | None = None,
                     resources: dict | None = None, check_data: bool = True, extra_hooks: Sequence = ()) -> Evaluation:
    """Dataset, model, views, hooks, TTA method and metrics of ``cfg`` (no files written, nothing run)."""
    seed = int(cfg.get('seed', 0))
    seed_everything(seed)
    data_cfg = dict(cfg.data)
    dataset = DATASETS.build(dict(data_cfg['dataset']))
    check_label_map(dataset, enabled=check_data)  # refuses an inconsistent label map (LabelMapError)
    logger.info('dataset %s: %d images, %d classes', getattr(dataset, 'name', type(dataset).__name__),
                len(dataset), dataset.num_classes)
    model = build_model(cfg.model, dataset.label_space, device)
    tta_cfg = dict(cfg.tta)
    views = build_views(tta_cfg.pop('views', None), model.backbone.preprocess_cfg)
    hooks = hooks if hooks is not None else HookList(list(cfg.get('custom_hooks') or []))
    for h in extra_hooks:
        hooks.add(h)
    method = TTA_METHODS.build(tta_cfg, default_args=dict(
        model=model, hooks=hooks, seed=seed, resources=resources if resources is not None else run_resources(cfg)))
    metrics = [METRICS.build(dict(m)) for m in cfg.get('metrics') or DEFAULT_METRICS]
    selected = select_indices(len(dataset), data_cfg.get('max_samples'), int(data_cfg.get('subset_seed') or 0))
    stream = build_stream([d.label for d in dataset.samples], selected, data_cfg.get('stream'))
    if stream.info:
        logger.info('stream: %d of %d selected samples kept (%s, order %s, achieved ratio %s)', len(stream.indices),
                    len(selected), stream.info.get('imbalance') or 'balanced', stream.info['order'],
                    stream.info['achieved_ratio'])
    name = tta_cfg['type'] if isinstance(tta_cfg['type'], str) else tta_cfg['type'].__name__
    return Evaluation(dataset, model, views, hooks, method, metrics, stream.indices, seed, name, stream.info)


def class_table(dataset) -> list[dict]:
    """The label -> class mapping the run uses (folder and image count where the dataset knows them)."""
    mapping = getattr(dataset, 'class_mapping', None)
    if mapping:
        return [dict(m) for m in mapping]
    ids = dataset.class_ids or [None] * dataset.num_classes
    return [dict(label=i, id=cid, name=name) for i, (cid, name) in enumerate(zip(ids, dataset.classnames))]
