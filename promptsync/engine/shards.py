"""Which samples a process evaluates, and where its predictions go until they are merged.

Selection: ``data.max_samples`` keeps a random subset drawn with ``data.subset_seed`` (default 0), never with
the run seed, so the images of a "± std over seeds" table are the same for every seed; growing ``max_samples``
keeps the smaller subset (one permutation, a longer prefix).

Sharding: the selected indices are cut into batches of ``batch_size`` in order, and batch ``b`` goes to shard
``b % n``. Every batch is the batch a single process would form, so batched methods see the same inputs; with
``batch_size=1`` this is ``indices[i::n]``.

Files: a single process writes ``<work_dir>/predictions.jsonl`` (and ``skipped.jsonl``) directly. Shard ``i`` of
``n`` — a rank of a distributed run or a ``--shard i/n`` job — writes ``<work_dir>/shards/<i>-of-<n>/`` with a
``shard.json`` stating its fingerprint, selection and whether it finished. :func:`merge_into` folds shard files
into the top-level files (records of the same index are identical for one fingerprint; the latest wins) and
rewrites them sorted by index, so a merged run and a single-process run have identical files.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from promptsync.errors import ConfigError, ProvenanceError
from promptsync.evaluation.predictions import drop_torn_tail, read_records

PREDICTIONS, SKIPPED, SHARD_FILE, SHARDS_DIR = 'predictions.jsonl', 'skipped.jsonl', 'shard.json', 'shards'


def select_indices(n: int, max_samples: int | None, subset_seed: int = 0) -> list[int]:
    """All indices, or a subset of ``max_samples`` drawn with ``subset_seed`` (kept in dataset order)."""
    if max_samples is None:
        return list(range(n))
    if isinstance(max_samples, bool) or not isinstance(max_samples, int) or max_samples < 1:
        raise ConfigError(f'max_samples must be a positive integer (or None for every image), got {max_samples!r}',
                          where='data.max_samples / --max-samples', fix='pass a number >= 1, or leave it out')
    if max_samples >= n:
        return list(range(n))
    return sorted(np.random.default_rng(int(subset_seed)).permutation(n)[:max_samples].tolist())


def parse_shard(value) -> tuple[int, int] | None:
    if value is None:
        return None
    try:
        rank, world = (int(x) for x in value)
    except (TypeError, ValueError):
        raise ConfigError(f'shard must be [i, n], got {value!r}', where='data.shard / --shard',
                          fix='e.g. --shard 0/4') from None
    if not 0 <= rank < world:
        raise ConfigError(f'shard {rank}/{world}: need 0 <= i < n', where='data.shard / --shard')
    return rank, world


def shard_indices(indices: Sequence[int], shard: tuple[int, int] | None, batch_size: int = 1) -> list[int]:
    """The indices of shard ``(i, n)``: every ``n``-th batch of ``batch_size``, starting with batch ``i``."""
    if shard is None:
        return list(indices)
    i, n = shard
    bs = max(int(batch_size), 1)
    return [x for b in range(i, (len(indices) + bs - 1) // bs, n) for x in indices[b * bs:(b + 1) * bs]]


def shard_dir(work_dir: Path, shard: tuple[int, int]) -> Path:
    return Path(work_dir) / SHARDS_DIR / f'{shard[0]}-of-{shard[1]}'


def read_shard_file(directory: Path) -> dict:
    try:
        return json.loads((Path(directory) / SHARD_FILE).read_text())
    except (OSError, ValueError):
        return {}


def write_json(path: Path, data) -> None:
    """Write JSON atomically (a reader never sees half a file)."""
    path = Path(path)
    tmp = path.with_name(f'{path.name}.{os.getpid()}.tmp')
    tmp.write_text(json.dumps(data, indent=2, default=str) + '\n')
    os.replace(tmp, path)


def write_records(path: Path, records: Iterable[dict]) -> None:
    path = Path(path)
    tmp = path.with_name(f'{path.name}.{os.getpid()}.tmp')
    tmp.write_text(''.join(json.dumps(r) + '\n' for r in records))
    os.replace(tmp, path)


def clean_tails(*paths: Path) -> list[Path]:
    """Cut partial last lines left by an interrupted write; returns the files that had one."""
    return [p for p in paths if drop_torn_tail(p)]


def shard_dirs(work_dir: Path) -> list[Path]:
    root = Path(work_dir) / SHARDS_DIR
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []


def check_shards(work_dir: Path, fingerprint: str) -> list[Path]:
    """The shard dirs of this run; refuses dirs left by a run of another config."""
    dirs = shard_dirs(work_dir)
    for d in dirs:
        other = read_shard_file(d).get('fingerprint')
        if (d / PREDICTIONS).exists() and other != fingerprint:
            raise ProvenanceError(f'{d} holds predictions of a different config (fingerprint {other}, now '
                                  f'{fingerprint})', where=str(d),
                                  fix='use another --work-dir, or --no-resume to discard them')
    return dirs


def merge_into(work_dir: Path, dirs: Sequence[Path]) -> int:
    """Fold the prediction/skipped files of shard ``dirs`` into ``work_dir``'s, sorted by index; removes the dirs.

    Returns the number of records taken from the shards.
    """
    work_dir = Path(work_dir)
    top_pred, top_skip = work_dir / PREDICTIONS, work_dir / SKIPPED
    clean_tails(top_pred, top_skip, *(d / PREDICTIONS for d in dirs), *(d / SKIPPED for d in dirs))
    preds = {r['index']: r for r in read_records(top_pred)}
    skipped = {r['index']: r for r in read_records(top_skip)}
    taken = 0
    for d in dirs:
        for r in read_records(d / PREDICTIONS):
            preds[r['index']] = r
            taken += 1
        for r in read_records(d / SKIPPED):
            skipped[r['index']] = r
    skipped = {i: r for i, r in skipped.items() if i not in preds}
    write_records(top_pred, [preds[i] for i in sorted(preds)])
    write_records(top_skip, [skipped[i] for i in sorted(skipped)])
    for d in dirs:
        shutil.rmtree(d, ignore_errors=True)
    root = work_dir / SHARDS_DIR
    if root.is_dir() and not any(root.iterdir()):
        root.rmdir()
    return taken
