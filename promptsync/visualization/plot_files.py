"""Which figure a file on disk gets, and drawing it next to the file (what ``tools/plot.py`` runs).

A file is recognised by its contents, whatever its name: a suite result (benchmark.json: ``table``, ``cells``,
``datasets``), an ablation (ablation.json: ``grid``, ``cells``), a training log (train_log.jsonl: ``epoch``, ``loss``)
or per-sample predictions (predictions.jsonl: ``label``, ``confidence``). A folder is searched for those four names.
The figure is written next to the file: benchmark.png, ablation.png, train_curves.png, reliability.png (a file of
another name gets ``<name>.<figure>.png``, so that a copy never overwrites the run's own figure).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from promptsync.errors import CorruptFileError, ResourceError
from promptsync.evaluation.predictions import PredictionTable, read_records

from .ablation_plot import ablation_plot
from .figure import PlotInputError
from .reliability import reliability_diagram
from .suite_bars import suite_bars
from .training_curves import training_curves

#: kind -> (the file a run writes, the figure drawn from it)
KINDS = {'suite': ('benchmark.json', 'benchmark.png'), 'ablation': ('ablation.json', 'ablation.png'),
         'training': ('train_log.jsonl', 'train_curves.png'), 'predictions': ('predictions.jsonl', 'reliability.png')}


def _first_line(path: Path) -> dict:
    with path.open(errors='replace') as fh:
        for line in fh:
            if line.strip():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    return {}
                return record if isinstance(record, dict) else {}
    return {}


def detect(path: Path) -> str:
    """The kind of ``path`` (a key of :data:`KINDS`), from its contents."""
    try:
        document = json.loads(path.read_text(errors='replace'))
    except json.JSONDecodeError:
        document = None
    keys = set(document) if isinstance(document, dict) else set()
    if {'table', 'cells', 'datasets'} <= keys:
        return 'suite'
    if {'grid', 'cells'} <= keys:
        return 'ablation'
    first = _first_line(path)
    if {'epoch', 'loss'} <= set(first):
        return 'training'
    if {'label', 'confidence'} <= set(first):
        return 'predictions'
    raise CorruptFileError(f'{path} is none of the files a figure is drawn from',
                           where=str(path), fix='give a ' + ', '.join(name for name, _ in KINDS.values()) +
                           ' (or the folder holding one)')


def figure_path(path: Path, kind: str) -> Path:
    source, figure = KINDS[kind]
    return path.with_name(figure if path.name == source else f'{path.name}.{figure}')


def _sibling_json(path: Path, name: str) -> dict:
    try:
        return json.loads((path.parent / name).read_text())
    except (OSError, ValueError):
        return {}


def plot_file(path: str | Path, bins: int = 15, metrics: Sequence[str] | None = None) -> Path:
    """Draw the figure of one file next to it; returns the figure's path."""
    path = Path(path)
    kind = detect(path)
    out = figure_path(path, kind)
    if kind == 'suite':
        return suite_bars(json.loads(path.read_text()), path=out, metrics=metrics)
    if kind == 'ablation':
        return ablation_plot(json.loads(path.read_text()), path=out, metrics=metrics)
    if metrics is not None:
        raise PlotInputError(f'--metrics applies to suites and ablations, not to {path.name}', where='--metrics')
    if kind == 'training':
        selected = _sibling_json(path, 'run.json').get('selected_epoch')
        return training_curves(path, path=out, selected_epoch=selected, title=f'training: {path.parent.name}')
    table = PredictionTable.from_records(read_records(path))
    name = _sibling_json(path, 'metrics.json').get('run_name') or path.parent.name
    return reliability_diagram(table.confidence, table.topk[:, 0] == table.labels, bins, path=out, title=name)


def plot_target(target: str | Path, bins: int = 15, metrics: Sequence[str] | None = None) -> list[Path]:
    """Draw the figure of a file, or of each run file in a folder; returns the figures written."""
    target = Path(target)
    if target.is_dir():
        files = [target / source for source, _ in KINDS.values() if (target / source).is_file()]
        if not files:
            raise ResourceError(f'{target} holds none of ' + ', '.join(s for s, _ in KINDS.values()),
                                where=str(target), fix='give a run, suite or ablation work dir, or one of those files')
        suited = [f for f in files if detect(f) in ('suite', 'ablation')]
        return [plot_file(f, bins, metrics if f in suited else None) for f in files]
    if not target.exists():
        raise ResourceError(f'{target} does not exist', where=str(target))
    return [plot_file(target, bins, metrics)]
