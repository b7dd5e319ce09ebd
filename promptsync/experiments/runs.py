"""Running one evaluation into its own directory, reusing it when it already completed (grids, suites).

A run directory gets a completion marker (``MARKER``) holding the config fingerprint and the sample selection
once its run finished. A later call reuses the directory's ``metrics.json`` only when the marker, ``run.json`` and
the new config agree; otherwise ``run_test`` runs (and resumes its own predictions). A failing run is recorded,
with its traceback in ``error.txt``, and never raises: the caller's grid or suite goes on.
"""
from __future__ import annotations

import copy
import json
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Mapping

from mmengine.config import Config

from promptsync.engine import run_test
from promptsync.engine.provenance import fingerprint

MARKER = 'run_complete.json'


def set_key(node: Any, key: str, value: Any) -> Any:
    """Set dotted ``key`` to a copy of ``value`` (replacing the old value); returns the updated node."""
    head, _, rest = key.partition('.')
    if isinstance(node, (list, tuple)):
        i = int(head)
        new = copy.deepcopy(value) if not rest else set_key(node[i], rest, value)
        if isinstance(node, tuple):
            return node[:i] + (new,) + node[i + 1:]
        node[i] = new
        return node
    node[head] = copy.deepcopy(value) if not rest else set_key(node[head], rest, value)
    return node


def _selection(cfg: Config) -> dict:
    data = cfg.get('data') or {}  # the fingerprint leaves out the sample selection
    return json.loads(json.dumps(dict(max_samples=data.get('max_samples'), subset_seed=data.get('subset_seed'),
                                      shard=data.get('shard'))))


def completed_metrics(run_dir: Path, fp: str, selection: dict) -> dict | None:
    """``metrics.json`` of ``run_dir`` (with ``run.json``'s timing) if its last run completed with this fingerprint
    and selection."""
    try:
        marker = json.loads((run_dir / MARKER).read_text())
        run = json.loads((run_dir / 'run.json').read_text())
        metrics = json.loads((run_dir / 'metrics.json').read_text())
    except (OSError, ValueError):
        return None
    same = marker.get('fingerprint') == fp == run.get('fingerprint') and marker.get('selection') == selection
    return dict(metrics, timing=run.get('timing') or {}) if same and marker.get('status') == 'ok' else None


def _record(result: Mapping) -> dict:
    timing = result.get('timing') or {}
    return dict(metrics=dict(result['metrics']), ms_per_img=timing.get('tta_ms_per_sample'),
                num_samples=result.get('num_samples'), num_new=result.get('num_new'),
                num_skipped=result.get('num_skipped', 0))


def run_one(cfg: Config, run_dir: Path, resume: bool) -> dict:
    """Run (or reuse) one (cell, seed); never raises for a failing run, records the error instead."""
    fp, sel = fingerprint(cfg, 'test'), _selection(cfg)
    rec = dict(fingerprint=fp, status='pending', error=None)
    reused = completed_metrics(run_dir, fp, sel) if resume else None
    if reused is not None:
        return dict(rec, status='reused', wall_s=0.0, **_record(reused))
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / MARKER).unlink(missing_ok=True)
    tick = time.time()
    try:
        result = run_test(cfg, resume=resume)
    except Exception as err:  # noqa: BLE001 - a failing run is recorded, the grid goes on
        rec.update(status='failed', error=f'{type(err).__name__}: {err}', wall_s=round(time.time() - tick, 3))
        (run_dir / 'error.txt').write_text(traceback.format_exc())
        print(f'FAILED {run_dir.name}: {rec["error"]} (traceback in {run_dir / "error.txt"})', file=sys.stderr)
    else:
        rec.update(status='ran', wall_s=round(time.time() - tick, 3), **_record(result))
        (run_dir / 'error.txt').unlink(missing_ok=True)
    marker = dict(rec, status='ok' if rec['status'] == 'ran' else 'failed', selection=sel,
                  finished=time.strftime('%Y-%m-%dT%H:%M:%S'))
    (run_dir / MARKER).write_text(json.dumps(marker, indent=2, default=repr) + '\n')
    return rec


class CellProgress:
    """``[k/N] name`` lines for the cells of a grid or suite, with the elapsed time and an ETA from the cells that
    ran (reused cells cost nothing and are not counted in the rate)."""

    def __init__(self, total: int, what: str):
        self.total, self.what, self.k = total, what, 0
        self.started, self.ran, self.ran_s = time.time(), 0, 0.0

    def start(self, name: str) -> None:
        self.k += 1
        elapsed = time.time() - self.started
        eta = (f', ETA {_clock(self.ran_s / self.ran * (self.total - self.k + 1))}' if self.ran else '')
        print(f'[{self.what} {self.k}/{self.total}] {name} (elapsed {_clock(elapsed)}{eta})', flush=True)

    def done(self, rec: Mapping) -> None:
        if rec.get('status') == 'ran':
            self.ran += 1
            self.ran_s += float(rec.get('wall_s') or 0.0)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f'{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}'

