"""``plot_safely``: how runs draw their figures — a failing plot is a warning with the reason, never a lost table.

On failure the PNG at ``path`` is removed, so a stale figure of an earlier run is never shown beside a newer table.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from promptsync.utils.logging import get_logger

logger = get_logger('plots')


def plot_safely(draw: Callable[..., Path], *args, path: str | Path, **kwargs) -> Path | None:
    """``draw(*args, path=path, **kwargs)``; returns the written path, or ``None`` after logging why it failed."""
    path = Path(path)
    try:
        return Path(draw(*args, path=path, **kwargs))
    except Exception as exc:  # noqa: BLE001 - a figure is never worth a run
        stale = path.exists()
        try:
            path.unlink(missing_ok=True)
        except OSError:
            pass
        note = ('; an older figure there could not be removed, do not trust it' if path.exists() else
                '; removed the older figure there' if stale else '')
        logger.warning('could not draw %s (%s: %s)%s; the tables are written without it', path,
                       type(exc).__name__, exc, note)
        return None
