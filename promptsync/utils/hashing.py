"""File content hashes, cached by (absolute path, size, mtime).

The cache lives in memory and in ``$PROMPTSYNC_CACHE/file_hashes.json`` (default ``~/.cache/promptsync``), so a
1 GB prototype bank is read once, not at every run. A file rewritten in place gets a new mtime (and usually size),
so its stale entry is never used.
"""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

from promptsync.errors import ResourceError

_CACHE_LOCK = threading.Lock()
_memory: dict[str, str] = {}


def cache_dir() -> Path:
    return Path(os.environ.get('PROMPTSYNC_CACHE') or Path.home() / '.cache' / 'promptsync')


def _cache_file() -> Path:
    return cache_dir() / 'file_hashes.json'


def _read_disk_cache() -> dict[str, str]:
    try:
        data = json.loads(_cache_file().read_text())
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def _write_disk_cache(key: str, digest: str) -> None:
    """Best effort: an unwritable cache only costs a re-hash next time."""
    try:
        path = _cache_file()
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _read_disk_cache()
        data[key] = digest
        if len(data) > 5000:  # keep the newest entries
            data = dict(list(data.items())[-5000:])
        tmp = path.with_name(f'{path.name}.{os.getpid()}.tmp')
        tmp.write_text(json.dumps(data))
        os.replace(tmp, path)
    except OSError:
        pass


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """The file's sha256, cached by (absolute path, size, mtime)."""
    path = Path(path).expanduser()
    try:
        st = path.stat()
    except OSError as err:
        raise ResourceError(f'cannot read {path}: {err.strerror}', where=str(path)) from err
    key = f'{path.resolve()}|{st.st_size}|{st.st_mtime_ns}'
    with _CACHE_LOCK:
        if key in _memory:
            return _memory[key]
    digest = _read_disk_cache().get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(path, 'rb') as fh:
            for block in iter(lambda: fh.read(chunk), b''):
                h.update(block)
        digest = h.hexdigest()
        _write_disk_cache(key, digest)
    with _CACHE_LOCK:
        _memory[key] = digest
    return digest
