"""Config helpers around mmengine's ``Config`` (classic ``_base_`` python files only)."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

from mmengine.config import Config

#: keys that change how a run executes but not what it predicts (excluded from the fingerprint)
RUNTIME_ONLY_KEYS = ('work_dir', 'log_level', 'hooks', 'data.num_workers', 'data.batch_size',
                     'data.max_samples', 'data.shard')


def load_config(path: str | Path, cfg_options: Mapping[str, Any] | None = None) -> Config:
    """``Config.fromfile`` (honours ``_base_`` and ``custom_imports``) + ``--cfg-options`` applied last."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f'config file {path} does not exist')
    cfg = Config.fromfile(str(path))
    if cfg_options:
        cfg.merge_from_dict(dict(cfg_options))
    return cfg


def _drop(tree: dict, dotted: str) -> None:
    *parents, leaf = dotted.split('.')
    for p in parents:
        tree = tree.get(p)
        if not isinstance(tree, dict):
            return
    tree.pop(leaf, None)


def fingerprint(cfg: Config) -> str:
    """Hash of everything in the resolved config that can change a prediction."""
    tree = json.loads(json.dumps(cfg.to_dict(), sort_keys=True, default=str))
    for key in RUNTIME_ONLY_KEYS:
        _drop(tree, key)
    return hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:16]
