"""Everything outside the config that a job needs — data roots, backbone weights, prompt checkpoint, prototype
bank — listed with found / missing and the fix for each, before anything heavy runs.

``tools/test.py CONFIG --check`` prints the list; every run checks it first and refuses to start while something
is missing, naming *all* missing resources at once (not the first one, then the next after a 10-minute build).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from tabulate import tabulate

from promptsync.errors import ResourceError
from promptsync.registry import DATASETS, LOSSES
from promptsync.utils.config import lookup

FOUND, MISSING, GENERATED, DOWNLOAD = 'found', 'missing', 'generated on first use', 'download on first use'
DATA_FIX = ('put the dataset under the data root (layouts: docs/datasets.md; python tools/check_data.py checks '
            'them), set PROMPTSYNC_DATA=/path, or --cfg-options {key}=/path')


@dataclass
class Resource:
    what: str
    key: str
    value: str
    status: str
    fix: str = ''

    @property
    def missing(self) -> bool:
        return self.status == MISSING


def _data_root(tree: Mapping, section: str, what: str) -> list[Resource]:
    ds = lookup(tree, f'{section}.dataset')
    if not isinstance(ds, Mapping):
        return []
    cls = DATASETS.get(ds.get('type')) if isinstance(ds.get('type'), str) else ds.get('type')
    key = f'{section}.dataset.root'
    root = ds.get('root')
    if root is None:
        return []
    if getattr(cls, 'generated', False):
        return [Resource(what, key, str(root), FOUND if Path(root).is_dir() else GENERATED)]
    found = Path(str(root)).expanduser().is_dir()
    return [Resource(what, key, str(root), FOUND if found else MISSING, '' if found else DATA_FIX.format(key=key))]


def _pretrained_status(backbone: Mapping) -> Resource:
    key, value = 'model.backbone.pretrained', backbone.get('pretrained')
    if value is None:
        return Resource('backbone weights', key, 'None', 'random weights (tests only)')
    value = str(value)
    if os.sep in value or '/' in value or value.endswith(('.pt', '.pth', '.bin', '.safetensors')):
        found = Path(value).expanduser().is_file()
        return Resource('backbone weights', key, value, FOUND if found else MISSING, '' if found else
                        f'pass an existing open_clip checkpoint file: --cfg-options {key}=/path/to/weights')
    cached = _cached_tag(str(backbone.get('model_name')), value, backbone.get('cache_dir'))
    if cached:
        return Resource('backbone weights', key, f'{value} ({cached})', FOUND)
    offline = os.environ.get('HF_HUB_OFFLINE', '0') not in ('0', '', 'false', 'False')
    fix = (f"download it once where the network is reachable (open_clip caches it; set backbone.cache_dir to share the "
           f"cache), or pass a local file: --cfg-options {key}=/path/to/open_clip_pytorch_model.bin")
    return Resource('backbone weights', key, value, MISSING if offline else DOWNLOAD, fix)


def _cached_tag(model_name: str, tag: str, cache_dir: str | None) -> str | None:
    """The cached file of an open_clip pretrained tag, if any (hub cache or open_clip's url cache)."""
    try:
        from open_clip.pretrained import get_pretrained_cfg
        cfg = get_pretrained_cfg(model_name, tag) or {}
    except Exception:  # noqa: BLE001 - an unknown tag is reported when the backbone is built
        return None
    if cfg.get('file'):
        return cfg['file'] if Path(cfg['file']).is_file() else None
    hub = cfg.get('hf_hub', '')
    if hub:
        try:
            from huggingface_hub import try_to_load_from_cache
        except ImportError:
            return None
        repo, filename = os.path.split(hub.rstrip('/')) if not hub.endswith('/') else (hub.rstrip('/'), '')
        for name in filter(None, [filename, 'open_clip_model.safetensors', 'open_clip_pytorch_model.bin']):
            hit = try_to_load_from_cache(repo, name, cache_dir=cache_dir)
            if isinstance(hit, str):
                return hit
    url = cfg.get('url', '')
    if url:
        path = Path(cache_dir or Path.home() / '.cache' / 'clip') / os.path.basename(url)
        return str(path) if path.is_file() else None
    return None


def _file(what: str, key: str, value: Any, fix: str) -> list[Resource]:
    if not value:
        return []
    found = Path(str(value)).expanduser().is_file()
    return [Resource(what, key, str(value), FOUND if found else MISSING, '' if found else fix)]


def needs_prototypes(tree: Mapping) -> bool:
    """Whether a TTA config's losses read the run's prototype bank (a prototype loss without its own file)."""
    for loss in lookup(tree, 'tta.losses') or []:
        cls = LOSSES.get(loss.get('type')) if isinstance(loss.get('type'), str) else loss.get('type')
        if getattr(cls, 'needs_prototypes', False) and not loss.get('prototypes'):
            return True
    return False


def list_resources(cfg, job: str) -> list[Resource]:
    tree = cfg.to_dict() if hasattr(cfg, 'to_dict') else dict(cfg)
    out: list[Resource] = []
    if job == 'pretrain':
        return out
    sections = dict(test=[('data', 'test data root')], prototypes=[('proxy_data', 'proxy data root')],
                    train=[('train_data', 'training data root'), ('val_data', 'validation data root')])[job]
    for section, what in sections:
        out += _data_root(tree, section, what)
    backbone = lookup(tree, 'model.backbone') or {}
    if backbone:
        out.append(_pretrained_status(backbone))
    out += _file('prompt checkpoint', 'model.prompt_checkpoint', lookup(tree, 'model.prompt_checkpoint'),
                 'train one (tools/train.py), convert a release (tools/convert_checkpoint.py), or set '
                 'model.prompt_checkpoint=None to start from the initial prompts')
    if job == 'test':
        for i, loss in enumerate(lookup(tree, 'tta.losses') or []):
            out += _file('prototype bank', f'tta.losses.{i}.prototypes', loss.get('prototypes'),
                         'compute it with tools/compute_prototypes.py')
        if needs_prototypes(tree):
            bank = lookup(tree, 'prototypes.file')
            src = str(getattr(cfg, 'filename', None) or 'CONFIG')
            out += _file('prototype bank', 'prototypes.file', bank, f'python tools/compute_prototypes.py {src} '
                         '(with the same --cfg-options)') if bank else [
                Resource('prototype bank', 'prototypes.file', 'None', MISSING, 'set prototypes.file')]
    return out


def format_resources(items: list[Resource]) -> str:
    rows = [[r.what, r.key, r.value, r.status, r.fix] for r in items]
    return tabulate(rows, headers=['resource', 'config key', 'value', 'status', 'fix'], tablefmt='simple',
                    maxcolwidths=[None, None, 60, None, 70]) if rows else '(no outside resources)'


def require_resources(cfg, job: str) -> list[Resource]:
    """The resources of ``job``; raises one :class:`ResourceError` naming every missing one."""
    items = list_resources(cfg, job)
    missing = [r for r in items if r.missing]
    if missing:
        listed = '\n'.join(f'  - {r.what} ({r.key} = {r.value}): {r.fix}' for r in missing)
        raise ResourceError(f'{len(missing)} resource(s) this {job} run needs are missing:\n{listed}',
                            where=str(getattr(cfg, 'filename', None) or 'the config'),
                            fix='fix each as listed (tools/test.py CONFIG --check lists them without running)')
    return items

