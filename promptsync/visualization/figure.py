"""Shared figure plumbing: a ``Figure`` on its own Agg canvas, an atomic PNG write, and which metrics get a panel.

``matplotlib.figure.Figure`` + ``FigureCanvasAgg`` instead of pyplot: no interactive backend is ever selected and no
global figure registry is touched, so plotting from a run (or a test) leaves nothing behind.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from promptsync.errors import PromptsyncError

#: drawn next to the main metric when the runs measured it (calibration is the second thing people ask for)
SECONDARY_METRICS = ('ece',)
LOWER_IS_BETTER = ('ece',)
DPI = 120


class PlotInputError(PromptsyncError, ValueError):
    """The numbers given to a plot cannot be drawn as asked (wrong shape, out of range, nothing to draw)."""


def new_figure(width: float, height: float, **kwargs):
    """A ``Figure`` of ``width`` x ``height`` inches with an Agg canvas (imports matplotlib on first use)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as err:
        raise ImportError(f'the figures need matplotlib (pip install matplotlib): {err}') from err
    figure = Figure(figsize=(width, height), layout='constrained', **kwargs)
    FigureCanvasAgg(figure)
    return figure


def save_png(figure, path: str | Path, dpi: int = DPI) -> Path:
    """Write ``figure`` to ``path`` as PNG through a temporary file: never a half-written image."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    try:
        figure.savefig(tmp, format='png', dpi=dpi)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def metrics_of_interest(main: str, available: Iterable[str], requested: Iterable[str] | None = None) -> list[str]:
    """The metrics that get a panel: ``requested`` (each must be available), else ``main`` and the secondary metrics
    the runs measured."""
    available = list(dict.fromkeys(available))
    if requested is not None:
        requested = list(dict.fromkeys(requested))
        missing = [m for m in requested if m not in available]
        if missing or not requested:
            raise PlotInputError(f'no run measured the metrics {missing or requested}',
                                 where='metrics', fix=f"choose among {', '.join(available) or 'nothing'}")
        return requested
    chosen = [m for m in (main, *SECONDARY_METRICS) if m in available]
    if main not in chosen:
        raise PlotInputError(f"no run measured the metric '{main}'", where='metric',
                             fix=f"choose among {', '.join(available) or 'nothing (no run finished)'}")
    return list(dict.fromkeys(chosen))


def metric_title(metric: str) -> str:
    """The metric's name as a panel says it (``ece (lower is better)``)."""
    return f'{metric} (lower is better)' if metric in LOWER_IS_BETTER else metric
