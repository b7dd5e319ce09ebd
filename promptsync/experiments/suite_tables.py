"""Suite tables in the papers' layouts, with the published reference numbers beside the measured ones.

* ``plain`` — methods x datasets, plus the suite's averages (e.g. the DG suite's OOD average, the 10-dataset
  average of the cross-dataset suite); published rows from ``reference`` are printed first, marked ``(paper)``.
* ``base_to_novel`` — dataset columns named ``<dataset>/base`` and ``<dataset>/new`` become
  ``base / novel / HM`` per dataset, then the averages: mean base, mean novel and the harmonic mean of the two
  means (how MaPLe's README reports them).

Published numbers live in ``promptsync/evaluation/data/published_results.json`` with their sources.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

PUBLISHED = Path(__file__).resolve().parents[1] / 'evaluation' / 'data' / 'published_results.json'


@lru_cache(maxsize=None)
def published() -> dict:
    return json.loads(PUBLISHED.read_text())


def harmonic_mean(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a + b == 0:
        return None
    return 2 * a * b / (a + b)


def _fmt(value: float | None, std: float | None = None, n: int = 1) -> str:
    if value is None:
        return '-'
    return f'{value:.2f}' + (f' ± {std:.2f}' if std is not None and n > 1 else '')


def _cell(entry: dict | None) -> str:
    if not entry or entry.get('mean') is None:
        return '-'
    return _fmt(entry['mean'], entry.get('std'), entry.get('n', 1))


def reference_rows(reference: dict | None, columns: list[str]) -> list[list[str]]:
    """Published rows of ``reference['table']`` re-ordered to ``columns`` (missing columns print '-')."""
    if not reference:
        return []
    table = published()[reference['table']]
    index = {c: i for i, c in enumerate(table['columns'])}
    rows = []
    for name in reference.get('show') or list(table['rows']):
        values = table['rows'][name]['values']
        row = []
        for col in columns:
            if col in index:
                row.append(_fmt(values[index[col]]))
            elif col == table.get('average', {}).get('name'):
                vals = [values[index[c]] for c in table['average']['columns']]
                row.append(_fmt(sum(vals) / len(vals)) if None not in vals else '-')
            else:
                row.append('-')
        rows.append([f'{name} (paper)'] + row)
    return rows


def plain_table(out: dict) -> tuple[list[str], list[list[str]]]:
    columns = out['datasets'] + list(out['averages'])
    rows = reference_rows(out.get('reference'), columns)
    rows += [[method] + [_cell(row.get(c)) for c in columns] for method, row in out['table'].items()]
    return ['method'] + columns, rows


#: metrics whose base / novel pair has a harmonic mean (accuracies); other tables (ECE, collapse) show '-' there
HM_METRICS = ('top1', 'top5', 'mean_class_top1')


def base_to_novel_table(out: dict) -> tuple[list[str], list[list[str]]]:
    """Per dataset base / novel (mean ± std over seeds) / HM of the seed means, then the averages over datasets (HM
    only for accuracies: the harmonic mean of two calibration errors means nothing)."""
    hm = harmonic_mean if out.get('metric', 'top1') in HM_METRICS else (lambda a, b: None)
    groups = []
    for col in out['datasets']:
        name, _, part = col.rpartition('/')
        if part not in ('base', 'new'):
            raise ValueError(f"base_to_novel suites name their datasets '<dataset>/base' and '<dataset>/new'; got '{col}'")
        if name not in groups:
            groups.append(name)
    headers = ['method'] + [f'{g} {k}' for g in groups for k in ('base', 'novel', 'HM')] + ['avg base', 'avg novel', 'HM']
    rows = []
    ref = out.get('reference')
    if ref:
        table = published()[ref['table']]
        idx = {d: i for i, d in enumerate(table['datasets'])}
        for name in ref.get('show') or list(table['rows']):
            r = table['rows'][name]
            cells = []
            for g in groups:
                b, n = (r['base'][idx[g]], r['novel'][idx[g]]) if g in idx else (None, None)
                cells += [_fmt(b), _fmt(n), _fmt(harmonic_mean(b, n))]
            if all(g in idx for g in groups) and len(groups) == len(idx):
                cells += [_fmt(v) for v in r['average']]
            else:
                cells += ['-', '-', '-']
            rows.append([f'{name} (paper)'] + cells)
    for method, row in out['table'].items():
        cells, bases, novels = [], [], []
        for g in groups:
            b = (row.get(f'{g}/base') or {}).get('mean')
            n = (row.get(f'{g}/new') or {}).get('mean')
            bases.append(b)
            novels.append(n)
            cells += [_cell(row.get(f'{g}/base')), _cell(row.get(f'{g}/new')), _fmt(hm(b, n))]  # ± std over seeds
        avg_b = sum(bases) / len(bases) if None not in bases else None
        avg_n = sum(novels) / len(novels) if None not in novels else None
        rows.append([method] + cells + [_fmt(avg_b), _fmt(avg_n), _fmt(hm(avg_b, avg_n))])
    return headers, rows


LAYOUTS: dict[str, Any] = {'plain': plain_table, 'base_to_novel': base_to_novel_table}
