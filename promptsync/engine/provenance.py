"""Provenance: what a job's results depend on, as one fingerprint that a changed file cannot fool.

A job's fingerprint hashes the resolved config *and the content* of every file it names: each string value of
the config tree that is an existing file (backbone checkpoint, prompt checkpoint, prototype bank, class-name and
template files, ...) is replaced by ``sha256:<digest>`` before hashing, so a file replaced at the same path
changes the fingerprint while a checkout moved to another folder does not. Keys that change how a job executes
but not what it computes (work dir, logging, hooks, workers, ...) are left out, per job.

File digests come from :func:`promptsync.utils.hashing.file_sha256` (cached by path, size and mtime).
"""
from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from mmengine.config import Config

from promptsync.utils.hashing import file_sha256

#: keys that never change what any job computes (``custom_hooks`` may — a hook can replace the selection — so they
#: are in; ``default_hooks`` only draw progress)
RUNTIME_KEYS = ('work_dir', 'log_level', 'default_hooks', 'default_scope', 'run_name', 'env_cfg', 'suite', 'ablation')
#: per job: further keys left out of its fingerprint (dotted; list indices allowed)
JOB_RUNTIME_KEYS = {
    # the prototype bank enters through its content hash (prototypes.file), not through how it was made
    'test': ('data.num_workers', 'data.batch_size', 'data.max_samples', 'data.shard', 'proxy_data',
             'prototypes.layers', 'prototypes.per_class', 'prototypes.token_stats', 'prototypes.dtype',
             'prototypes.save_every', 'prototypes.views', 'prototypes.seed', 'prototypes.verify',
             'train_data', 'val_data', 'trainer'),
    'train': ('device', 'train_data.num_workers', 'val_data.num_workers', 'val_data.batch_size',
              'trainer.num_workers', 'trainer.val_batch_size', 'trainer.log_interval', 'data', 'tta',
              'metrics', 'proxy_data', 'prototypes'),
    'pretrain': ('data.workers', 'device'),
}
#: switches between exact ways of computing the same numbers (engine, shortcuts; equal to fp32 tolerance, tested):
#: left out of every job's fingerprint, like data.batch_size, so a run with them resumes a run without
SPEED_KEYS = ('model.backbone.truncate_text', 'model.backbone.text_grad_checkpointing', 'model.image_chunk_size',
              'tta.mode', 'tta.batch_size', 'tta.grad_views', 'tta.reuse_initial_text')
#: the prototype job's fingerprint keeps only these (what the bank's numbers depend on)
PROTOTYPE_KEYS = ('model', 'custom_imports', 'proxy_data.dataset', 'proxy_data.max_samples',
                  'proxy_data.subset_seed', 'prototypes.layers', 'prototypes.per_class', 'prototypes.token_stats',
                  'prototypes.views', 'prototypes.dtype', 'prototypes.seed')

def _is_file(value: Any) -> bool:
    if not isinstance(value, str) or not value or len(value) > 4096 or '\n' in value:
        return False
    try:
        return Path(value).expanduser().is_file()
    except OSError:
        return False


def _drop(tree: dict, dotted: str) -> None:
    *parents, leaf = dotted.split('.')
    node: Any = tree
    for part in parents:
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return
    if isinstance(node, dict):
        node.pop(leaf, None)


def _keep(tree: dict, keys: Iterable[str]) -> dict:
    out: dict = {}
    for dotted in keys:
        node: Any = tree
        parts = dotted.split('.')
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                node = None
                break
            node = node[part]
        if node is None:
            continue
        dst = out
        for part in parts[:-1]:
            dst = dst.setdefault(part, {})
        dst[parts[-1]] = node
    return out


def _prototype_tree(tree: dict) -> dict:
    """What a bank's numbers depend on; the run seed too when the prompts start random (no prompt checkpoint)."""
    kept = _keep(tree, PROTOTYPE_KEYS)
    for key in SPEED_KEYS:
        _drop(kept, key)
    if not (tree.get('model') or {}).get('prompt_checkpoint'):
        kept['seed'] = tree.get('seed', 0)
    return kept


def _hash_files(node: Any, prefix: str, files: dict[str, dict]) -> Any:
    """``node`` with every existing-file string replaced by its content hash; ``files`` collects them."""
    if isinstance(node, dict):
        return {k: _hash_files(v, f'{prefix}.{k}' if prefix else str(k), files) for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return [_hash_files(v, f'{prefix}.{i}', files) for i, v in enumerate(node)]
    if _is_file(node):
        path = Path(node).expanduser()
        digest = file_sha256(path)
        files[prefix] = dict(path=str(path.resolve()), sha256=digest, size=path.stat().st_size)
        return f'sha256:{digest}'
    return node


def config_tree(cfg: Config | Mapping) -> dict:
    """The resolved config as plain JSON-able data."""
    data = cfg.to_dict() if isinstance(cfg, Config) else copy.deepcopy(dict(cfg))
    return json.loads(json.dumps(data, sort_keys=True, default=str))


def fingerprint(cfg: Config | Mapping, job: str = 'test') -> str:
    """The fingerprint of ``job`` (test, train, prototypes, pretrain) under ``cfg``."""
    return fingerprint_and_files(cfg, job)[0]


def fingerprint_and_files(cfg: Config | Mapping, job: str = 'test') -> tuple[str, dict[str, dict]]:
    """``(fingerprint, files)``: ``files`` maps each config key that names a file to ``dict(path, sha256, size)``
    (recorded in ``run.json``)."""
    tree = config_tree(cfg)
    if job == 'prototypes':
        tree = _prototype_tree(tree)
    else:
        for key in RUNTIME_KEYS + SPEED_KEYS + JOB_RUNTIME_KEYS.get(job, ()):
            _drop(tree, key)
    files: dict[str, dict] = {}
    hashed = _hash_files(tree, '', files)
    digest = hashlib.sha256(json.dumps(dict(job=job, config=hashed), sort_keys=True).encode()).hexdigest()[:16]
    return digest, files


def source_summary(cfg: Config | Mapping, job: str = 'prototypes') -> dict:
    """The part of the config a job's fingerprint covers, with files as hashes (to show what differs)."""
    tree = config_tree(cfg)
    tree = _prototype_tree(tree) if job == 'prototypes' else tree
    return _hash_files(tree, '', {})


def differences(a: Any, b: Any, prefix: str = '', limit: int = 8) -> list[str]:
    """Dotted keys where two config trees differ (first ``limit``)."""
    out: list[str] = []

    def walk(x, y, p):
        if len(out) >= limit:
            return
        if isinstance(x, dict) and isinstance(y, dict):
            for k in sorted(set(x) | set(y)):
                walk(x.get(k, '<absent>'), y.get(k, '<absent>'), f'{p}.{k}' if p else str(k))
        elif x != y:
            out.append(f'{p}: {json.dumps(x, default=str)[:80]} -> {json.dumps(y, default=str)[:80]}')
    walk(a, b, prefix)
    return out
