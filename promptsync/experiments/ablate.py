"""Ablation grids: one config run over the Cartesian product of config-key values (and seeds).

A grid maps dotted config keys (list indices allowed: ``tta.losses.1.weight``) to lists of values. It comes
from the config's top-level ``ablation = dict(grid={...}, seeds=[...], metric='top1')`` and/or from
``--grid key=v1,v2`` (added to / overriding the config's keys). Every (cell, seed) is the base config with
the cell's values *set* (a value replaces the key's old value), run by ``run_test`` in
``<work_dir>/cells/<cell name>__seed=<s>``. A run whose directory holds a completed run of the same config
fingerprint and sample selection is reused, not recomputed; a failing run is recorded and the grid goes on.
The table and files are written by :mod:`promptsync.experiments.ablate_report` after every run.
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import re
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from mmengine.config import Config

from promptsync.engine.lock import WorkDirLock
from promptsync.experiments.ablate_report import summarize_cell, write_outputs
from promptsync.experiments.runs import MARKER, CellProgress, run_one, set_key  # noqa: F401 (MARKER: re-exported)
from promptsync.utils.cfg_options import parse_value

SPEC_KEYS = ('grid', 'seeds', 'metric')
RESERVED_KEYS = ('work_dir', 'ablation')


class AblationError(ValueError):
    """A grid, key or value that cannot be run; the message says what to change."""


# ---------------------------------------------------------------------------------------------- parsing
def split_values(text: str) -> list[str]:
    """Split ``v1,v2,[a,b]`` at the commas outside brackets and quotes."""
    items, cur, depth, quote = [], '', 0, None
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in '\'"':
            quote = ch
        elif ch in '([':
            depth += 1
        elif ch in ')]':
            depth -= 1
        elif ch == ',' and depth == 0:
            items.append(cur)
            cur = ''
            continue
        if depth < 0:
            break
        cur += ch
    if depth != 0 or quote:
        raise AblationError(f"unbalanced brackets or quotes in '{text}'")
    return items + [cur]


def parse_grid_arg(text: str) -> tuple[str, list]:
    """``'tta.steps=1,2'`` -> ``('tta.steps', [1, 2])``; values parsed like ``--cfg-options`` values."""
    key, sep, rest = text.partition('=')
    key = key.strip()
    if not sep or not key:
        raise AblationError(f"--grid expects KEY=V1,V2,... (e.g. tta.optimizer.lr=1e-3,5e-3), got '{text}'")
    raw = split_values(rest)
    if any(not v.strip() for v in raw):
        raise AblationError(f"--grid {key}: empty value in '{rest}' (separate values by single commas)")
    return key, [parse_value(v.strip()) for v in raw]


def parse_seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(',')]
    except ValueError:
        raise AblationError(f"--seeds expects integers separated by commas (e.g. 0,1,2), got '{text}'") from None
    if len(set(seeds)) != len(seeds):
        raise AblationError(f'--seeds lists a seed twice: {text}')
    return seeds


# ---------------------------------------------------------------------------------------------- keys
def config_paths(node: Any, prefix: str = '') -> list[str]:
    """Every dotted path of a config tree (dict keys and list indices)."""
    if isinstance(node, dict):
        items = [(str(k), v) for k, v in node.items()]
    elif isinstance(node, (list, tuple)):
        items = [(str(i), v) for i, v in enumerate(node)]
    else:
        return []
    out = []
    for k, v in items:
        path = f'{prefix}.{k}' if prefix else k
        out += [path] + config_paths(v, path)
    return out


def check_key(tree: Mapping, key: str, allow_new: bool = False) -> None:
    """Raise :class:`AblationError` unless ``key`` exists in ``tree`` (or may be new, see ``allow_new``)."""
    if key in RESERVED_KEYS:
        raise AblationError(f"'{key}' cannot be swept: the ablation sets it for every run")
    if key == 'data.shard':
        raise AblationError("'data.shard' cannot be swept: a shard is one part of a run, not a run (split a run with "
                            'tools/test.py --shard I/N or torchrun)')
    parts, node = key.split('.'), tree
    for i, part in enumerate(parts):
        here, last = '.'.join(parts[:i]) or 'the top level', i == len(parts) - 1
        if isinstance(node, dict):
            if part in node:
                node = node[part]
                continue
            if last and allow_new:
                return
            near = difflib.get_close_matches(key, config_paths(tree), n=5, cutoff=0.6)
            msg = (f"unknown config key '{key}': '{here}' has no key '{part}' "
                   f"(it has: {', '.join(map(str, node)) or 'nothing'}).")
            if near:
                msg += f" Did you mean: {', '.join(near)}?"
            msg += (' Pass --allow-new-keys to add a new key to an existing dict.' if last else
                    ' --allow-new-keys only adds a key whose parent dict exists.')
            raise AblationError(msg)
        if isinstance(node, (list, tuple)):
            if part.isdigit() and int(part) < len(node):
                node = node[int(part)]
                continue
            raise AblationError(f"config key '{key}': '{here}' is a list of {len(node)} items, "
                                f"'{part}' is not an index in 0..{len(node) - 1}")
        raise AblationError(f"config key '{key}': '{here}' is the value {node!r}, it has no key '{part}'")


# ---------------------------------------------------------------------------------------------- the grid
def resolve_spec(cfg: Config, grid: Mapping[str, Sequence] | None = None, seeds: Sequence[int] | None = None,
                 metric: str | None = None, allow_new_keys: bool = False) -> tuple[dict, list, str]:
    """The config's ``ablation`` merged with the given grid/seeds/metric, checked against ``cfg``."""
    spec = dict(cfg.get('ablation') or {})
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise AblationError(f"ablation: unknown entries {unknown}; allowed: {', '.join(SPEC_KEYS)}")
    merged = dict(spec.get('grid') or {})
    merged.update(grid or {})
    overlap = [(a, b) for a in merged for b in merged if b.startswith(a + '.')]
    if overlap:
        raise AblationError(f"grid keys '{overlap[0][0]}' and '{overlap[0][1]}' overlap (one contains the other); "
                            'sweep the outer key with whole values, or the inner key only')
    tree = cfg.to_dict()
    tree.pop('ablation', None)
    for key, values in merged.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise AblationError(f"grid key '{key}': expected a non-empty list of values, got {values!r}")
        if len({json.dumps(v, sort_keys=True, default=repr) for v in values}) != len(values):
            raise AblationError(f"grid key '{key}' lists a value twice: {list(values)}")
        check_key(tree, key, allow_new_keys)
    seeds = list(seeds if seeds is not None else spec.get('seeds') or [])
    if 'seed' in merged:
        if seeds:
            raise AblationError("'seed' is a grid key and seeds are given too: sweep seeds one way only")
        seeds = [None]  # each cell sets its own seed
    elif not seeds:
        seeds = [int(cfg.get('seed', 0))]
    if not merged and len(seeds) < 2:
        raise AblationError('nothing to ablate: pass --grid KEY=V1,V2 (or several --seeds), '
                            "or define ablation = dict(grid={'key': [v1, v2]}) in the config")
    return {k: list(v) for k, v in merged.items()}, seeds, metric or spec.get('metric') or 'top1'


def format_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return ','.join(f'{k}-{format_value(v)}' for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ','.join(format_value(v) for v in value)
    return repr(value)


def cell_name(overrides: Mapping[str, Any]) -> str:
    """``tta.optimizer.lr=0.001__tta.steps=2``, safe as a folder name."""
    name = '__'.join(f'{k}={format_value(v)}' for k, v in overrides.items())
    name = re.sub(r'[^A-Za-z0-9._,=+-]+', '_', name)
    if len(name) > 150:
        name = name[:140] + '~' + _digest(overrides)
    return name


def _digest(obj: Any) -> str:
    return hashlib.sha1(json.dumps(obj, sort_keys=True, default=repr).encode()).hexdigest()[:8]


def expand_grid(grid: Mapping[str, Sequence]) -> list[dict]:
    """The cells (ordered dicts of key -> value): the Cartesian product, first key varying slowest."""
    cells = [dict(zip(grid, combo)) for combo in itertools.product(*grid.values())]
    names = [cell_name(c) for c in cells]
    dup = {n for n in names if names.count(n) > 1}
    return [dict(name=n + ('~' + _digest(c) if n in dup else ''), overrides=c) for n, c in zip(names, cells)]


def run_config(cfg: Config, overrides: Mapping[str, Any], seed: int | None, run_dir: Path) -> Config:
    """The config of one (cell, seed): base config + the cell's values (+ seed), without ``ablation``."""
    out = copy.deepcopy(cfg)
    out._cfg_dict.pop('ablation', None)
    for key, value in overrides.items():
        set_key(out._cfg_dict, key, value)
    if seed is not None:
        out._cfg_dict['seed'] = seed
    out._cfg_dict['work_dir'] = str(run_dir)
    return out


def run_ablation(cfg: Config, grid: Mapping[str, Sequence] | None = None, seeds: Sequence[int] | None = None,
                 work_dir: str | Path | None = None, metric: str | None = None, allow_new_keys: bool = False,
                 resume: bool = True) -> dict:
    """Run every (cell, seed) of the grid; returns what ``ablation.json`` holds (plus ``table``)."""
    grid, seeds, metric = resolve_spec(cfg, grid, seeds, metric, allow_new_keys)
    source = Path(cfg.filename or 'config')
    work_dir = Path(work_dir or Path('work_dirs') / 'ablate' / source.stem)
    cells = expand_grid(grid)
    for cell in cells:
        cell['runs'] = [dict(seed=cell['overrides']['seed'] if s is None else s, status='pending',
                             dir=cell['name'] if s is None else '__'.join(filter(None, [cell['name'], f'seed={s}'])))
                        for s in seeds]
        summarize_cell(cell)
    state = dict(config=str(cfg.filename), work_dir=str(work_dir), grid=grid, seeds=seeds, metric=metric,
                 started=time.strftime('%Y-%m-%dT%H:%M:%S'), cells=cells)
    progress = CellProgress(len(cells) * len(seeds), 'ablate')
    lock = WorkDirLock(work_dir).acquire()  # one grid process per work dir
    try:
        for cell in cells:
            for i, run in enumerate(cell['runs']):
                run_dir = work_dir / 'cells' / run['dir']
                progress.start(run['dir'])
                run_cfg = run_config(cfg, cell['overrides'], run['seed'], run_dir)
                cell['runs'][i] = dict(run, **run_one(run_cfg, run_dir, resume))
                progress.done(cell['runs'][i])
                summarize_cell(cell)
                write_outputs(state, work_dir)
    finally:
        for cell in cells:
            summarize_cell(cell)
        state['table'] = write_outputs(state, work_dir, final=True)
        lock.release()
    return state
