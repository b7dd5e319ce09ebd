"""The ablation table: per-cell summaries over seeds, written as ablation.{json,csv,md} and printed."""
from __future__ import annotations

import csv
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from tabulate import tabulate

from promptsync.visualization.ablation_plot import ablation_plot
from promptsync.visualization.safe import plot_safely

RUN_STATES = ('ran', 'reused', 'failed', 'pending')


def summarize_cell(cell: dict) -> dict:
    """Add n, metrics {name: {mean, std, values}}, ms_per_img, wall_s, status and errors to ``cell``."""
    done = [r for r in cell['runs'] if r['status'] in ('ran', 'reused')]
    names: list[str] = []
    for r in done:
        names += [m for m in r['metrics'] if m not in names]
    metrics = {}
    for name in names:
        values = [r['metrics'][name] for r in done if name in r['metrics']]
        std = statistics.stdev(values) if len(values) > 1 else None
        metrics[name] = dict(mean=statistics.fmean(values), std=std, values=values)
    ms = [r['ms_per_img'] for r in done if r.get('ms_per_img') is not None]
    count = {s: sum(r['status'] == s for r in cell['runs']) for s in RUN_STATES}
    total = len(cell['runs'])
    if count['failed']:
        status = 'failed' if not done else f"failed {count['failed']}/{total}"
    elif count['pending']:
        status = 'pending' if not done else f"incomplete {len(done)}/{total}"
    elif count['reused'] == total:
        status = 'reused'
    else:
        status = 'ok' if not count['reused'] else f"ok ({count['reused']} reused)"
    cell.update(n=len(done), metrics=metrics, ms_per_img=statistics.fmean(ms) if ms else None,
                wall_s=round(sum(r.get('wall_s') or 0.0 for r in cell['runs']), 3), status=status,
                errors={r['dir']: r['error'] for r in cell['runs'] if r.get('error')})
    return cell


def metric_names(cells: list[dict]) -> list[str]:
    names: list[str] = []
    for cell in cells:
        names += [m for m in cell.get('metrics', {}) if m not in names]
    return names


def best_cell(cells: list[dict], metric: str) -> dict | None:
    scored = [c for c in cells if metric in c.get('metrics', {}) and not math.isnan(c['metrics'][metric]['mean'])]
    if not scored:
        return None
    best = max(scored, key=lambda c: c['metrics'][metric]['mean'])
    return dict(cell=best['name'], metric=metric, mean=best['metrics'][metric]['mean'])


def display(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def _mean_std(entry: dict | None) -> str:
    if entry is None:
        return '-'
    if entry['std'] is None:
        return f"{entry['mean']:.2f}"
    return f"{entry['mean']:.2f} ± {entry['std']:.2f}"


def rows(state: dict, numeric: bool = False) -> list[dict]:
    """One row per cell: the swept keys, the metrics, ms/img, n (completed seeds) and status."""
    names, out = metric_names(state['cells']), []
    for cell in state['cells']:
        row = {k: (v if numeric and isinstance(v, (int, float)) else display(v)) for k, v in cell['overrides'].items()}
        for name in names:
            entry = cell['metrics'].get(name)
            if numeric:
                row[name] = entry['mean'] if entry else None
                row[f'{name}_std'] = entry['std'] if entry else None
            else:
                row[name] = _mean_std(entry)
        ms = cell['ms_per_img']
        row['ms/img'] = (round(ms, 2) if numeric else f'{ms:.1f}') if ms is not None else ('' if numeric else '-')
        row.update(n=cell['n'], status=cell['status'])
        if numeric:
            row['error'] = '; '.join(f'{k}: {v}' for k, v in cell['errors'].items())
        out.append(row)
    return out


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(text)
    os.replace(tmp, path)  # never a half-written table


def write_outputs(state: dict, work_dir: Path, final: bool = False) -> str:
    """Write ablation.json/.csv/.md into ``work_dir``; when ``final``, also draw ablation.png (linked from the .md; a
    failing plot is only a warning) and print the table. Returns it."""
    work_dir.mkdir(parents=True, exist_ok=True)
    cells = state['cells']
    counts = {s: sum(r['status'] == s for c in cells for r in c['runs']) for s in RUN_STATES}
    state.update(metric_names=metric_names(cells), counts=counts, best=best_cell(cells, state['metric']),
                 updated=time.strftime('%Y-%m-%dT%H:%M:%S'))
    payload = {k: v for k, v in state.items() if k != 'table'}
    _write(work_dir / 'ablation.json', json.dumps(payload, indent=2, default=repr) + '\n')

    numeric = rows(state, numeric=True)
    with open(work_dir / 'ablation.csv.tmp', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(numeric[0]) if numeric else ['n'])
        writer.writeheader()
        writer.writerows(numeric)
    os.replace(work_dir / 'ablation.csv.tmp', work_dir / 'ablation.csv')

    table = tabulate(rows(state), headers='keys', tablefmt='simple', disable_numparse=True)
    lines = [f"# Ablation of {state['config']}", '',
             f"Seeds: {', '.join(map(str, state['seeds']))}. Metrics are the mean ± sample std over the n "
             'completed seeds; ms/img is the adaptation time per image.', '',
             tabulate(rows(state), headers='keys', tablefmt='github', disable_numparse=True), '']
    plot = plot_safely(ablation_plot, state, path=work_dir / 'ablation.png') if final else None  # once, at the end
    if plot:
        lines += [f"![{state['metric']} over the grid]({plot.name})", '']
    notes = _notes(state)
    _write(work_dir / 'ablation.md', '\n'.join(lines + notes) + '\n')
    if final:
        print(table)
        for note in notes:
            print(note, file=sys.stderr if note.startswith('- FAILED') else sys.stdout)
        print(f'ablation table in {work_dir}/ablation.{{md,csv,json}}' + (f'; figure {plot}' if plot else ''))
    return table


def _notes(state: dict) -> list[str]:
    notes, best = [], state['best']
    if best:
        notes.append(f"Best by {best['metric']}: {best['cell'] or '(base)'} ({best['mean']:.2f}).")
    elif state['metric_names']:
        notes.append(f"Metric '{state['metric']}' was not produced; available: {', '.join(state['metric_names'])}.")
    for cell in state['cells']:
        notes += [f'- FAILED {d}: {e}' for d, e in cell['errors'].items()]
    c = state['counts']
    notes.append(f"Runs: {c['ran']} ran, {c['reused']} reused, {c['failed']} failed, {c['pending']} pending.")
    return notes
