"""Where the adaptation recording of a run lies in its work dir (the recorder writes it, the report reads it).

One process (no shards) writes::

    adaptation.jsonl                  one line per sample, keyed by dataset index (appended as samples finish)
    adaptation.json                   what the lines mean, the run's fingerprint and the initial scales
    adaptation_sums/all.<k>.npz       sums over the samples of session k (a resumed run adds k+1)

Shard ``i`` of ``n`` (a rank, or a ``--shard i/n`` job) writes the same with the tag ``<i>-of-<n>``
(``adaptation.<i>-of-<n>.jsonl``, ``adaptation.<i>-of-<n>.json``, ``adaptation_sums/<i>-of-<n>.<k>.npz``) in the
work dir itself, not under ``shards/``: the shard folders are removed once their predictions are merged, and these
files are read where they are (the report reads every tag).
"""
from __future__ import annotations

import re
import shutil
from pathlib import Path

RECORDS, META, SUMS_DIR = 'adaptation.jsonl', 'adaptation.json', 'adaptation_sums'
ALL = 'all'
_TAGGED = re.compile(r'^adaptation\.(\d+-of-\d+)\.(jsonl|json)$')
_SUMS = re.compile(r'^(all|\d+-of-\d+)\.(\d+)\.npz$')


def shard_tag(shard: tuple[int, int] | None) -> str:
    return ALL if shard is None else f'{int(shard[0])}-of-{int(shard[1])}'


def records_path(work_dir: Path, tag: str) -> Path:
    return Path(work_dir) / (RECORDS if tag == ALL else f'adaptation.{tag}.jsonl')


def meta_path(work_dir: Path, tag: str) -> Path:
    return Path(work_dir) / (META if tag == ALL else f'adaptation.{tag}.json')


def sums_path(work_dir: Path, tag: str, session: int) -> Path:
    return Path(work_dir) / SUMS_DIR / f'{tag}.{int(session)}.npz'


def record_tags(work_dir: Path) -> list[str]:
    """The tags with a records file in ``work_dir`` (``'all'`` first)."""
    work_dir = Path(work_dir)
    tags = [ALL] if (work_dir / RECORDS).is_file() else []
    if work_dir.is_dir():
        tags += sorted(m.group(1) for p in work_dir.iterdir() if (m := _TAGGED.match(p.name)) and m.group(2) == 'jsonl')
    return tags


def sums_files(work_dir: Path, tag: str | None = None) -> list[tuple[str, int, Path]]:
    """``(tag, session, path)`` of the saved sums (of one tag, or all), in order."""
    root = Path(work_dir) / SUMS_DIR
    if not root.is_dir():
        return []
    found = [(m.group(1), int(m.group(2)), p) for p in root.iterdir() if (m := _SUMS.match(p.name))]
    return sorted(f for f in found if tag is None or f[0] == tag)


def next_session(work_dir: Path, tag: str) -> int:
    return 1 + max((s for _, s, _ in sums_files(work_dir, tag)), default=0)


def remove_recording(work_dir: Path, tag: str | None = None) -> None:
    """Delete the recording of one tag, or (``None``) every tag's (a fresh run starts from nothing)."""
    work_dir = Path(work_dir)
    tags = record_tags(work_dir) + [ALL] if tag is None else [tag]
    if tag is None and work_dir.is_dir():
        tags += [m.group(1) for p in work_dir.iterdir() if (m := _TAGGED.match(p.name))]
    for t in set(tags):
        records_path(work_dir, t).unlink(missing_ok=True)
        meta_path(work_dir, t).unlink(missing_ok=True)
    if tag is None:
        shutil.rmtree(work_dir / SUMS_DIR, ignore_errors=True)
        return
    for _, _, path in sums_files(work_dir, tag):
        path.unlink(missing_ok=True)
