"""Suites: every (method, dataset, seed) cell of a benchmark, one table (methods x datasets + averages).

A suite config holds ``suite = dict(...)``::

    suite = dict(
        name='shapes',
        methods=dict(zeroshot=dict(config='configs/shapes/zeroshot.py', seeds=[0]),   # per-method seeds
                     tpt=dict(config='configs/shapes/tpt.py', cfg_options={...})),  # per-method overrides
        datasets=dict(sketch={'data.dataset.domain': 'sketch'}, ...),                # column -> key overrides
        # or, with overrides for some methods only: pets=dict(overrides={...}, methods=dict(zeroshot={...}))
        averages=dict(avg=['sketch', 'cartoon', 'corrupted']),                       # extra columns
        layout='plain',                       # or 'base_to_novel' (datasets '<name>/base', '<name>/new')
        reference=dict(table='dg_vit_b16', show=['CLIP', 'TPT']),  # published rows (evaluation/data)
        seeds=[0, 1, 2], metric='top1',
        tables=['ece', 'pred_max_share'],     # more tables: any key of the cells' metrics.json 'metrics'
        cfg_options={'data.max_samples': 200},                                       # applied to every cell
        prepare=[dict(step='prototypes', method='promptsync')],                      # before the cells run
        train=dict(learners=dict(maple='configs/...train.py'), datasets=dict(photo={...})))  # prompts per seed
    # with methods=dict(maple_tpt=dict(config=..., prompts='maple', prototypes=True)): see suite_training.py

Cells run through :func:`promptsync.experiments.runs.run_one` in ``<work_dir>/cells/<method>/<dataset>/seed<s>``: a
finished cell is reused, an interrupted one resumes, a failing one is recorded and the suite goes on.
"""
from __future__ import annotations

import copy
import json
import statistics
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

from mmengine.config import Config
from tabulate import tabulate

from promptsync.engine import compute_prototypes, train_prompts
from promptsync.engine.lock import WorkDirLock
from promptsync.engine.loops.prototype_loop import bank_is_current
from promptsync.experiments.runs import CellProgress, run_one, set_key
from promptsync.experiments.suite_tables import LAYOUTS
from promptsync.experiments.suite_training import SuiteTraining, dataset_group
from promptsync.utils.config import load_config
from promptsync.utils.logging import get_logger
from promptsync.visualization.safe import plot_safely
from promptsync.visualization.suite_bars import suite_bars

logger = get_logger('benchmark')


class SuiteError(ValueError):
    """A suite config that cannot run; the message says what to change."""


def _methods(spec: Mapping, root: Path, only: Sequence[str] | None, default_seeds: list[int]) -> dict[str, dict]:
    methods = {}
    for name, entry in spec.items():
        entry = dict(config=entry) if isinstance(entry, str) else dict(entry)
        entry.setdefault('seeds', default_seeds)
        path = Path(entry['config'])
        entry['config'] = str(path if path.is_absolute() else root / path)
        methods[name] = entry
    if only:
        unknown = [m for m in only if m not in methods]
        if unknown:
            raise SuiteError(f'unknown methods {unknown}; the suite has {list(methods)}')
        methods = {m: methods[m] for m in only}
    return methods


def dataset_overrides(entry: Mapping[str, Any], method: str) -> dict[str, Any]:
    """The key overrides of one dataset column for one method (shared ones, then the method's own)."""
    if 'overrides' not in entry:
        return dict(entry)
    return dict(entry['overrides'], **dict((entry.get('methods') or {}).get(method) or {}))


def cell_config(method_cfg: str, options: Mapping[str, Any], overrides: Mapping[str, Any], seed: int,
                run_dir: Path) -> Config:
    cfg = load_config(method_cfg, options)
    for key, value in overrides.items():  # dataset overrides replace whole values (e.g. a dataset dict)
        set_key(cfg._cfg_dict, key, value)
    cfg._cfg_dict['seed'] = seed
    cfg._cfg_dict['work_dir'] = str(run_dir)
    cfg._cfg_dict['run_name'] = f'{run_dir.parent.parent.name}/{run_dir.parent.name}/{run_dir.name}'
    return cfg


def _prepare(steps: Sequence[Mapping], methods: dict, suite_options: Mapping, datasets: Mapping) -> list[dict]:
    """Offline steps a method needs (prototypes, initial prompts), skipped when their output exists."""
    done = []
    first_dataset = next(iter(datasets.values()))  # prepared outputs do not depend on the test dataset
    for step in steps:
        step = dict(step)
        kind, method = step.pop('step'), step.pop('method')
        if method not in methods:  # a step for a method this run leaves out
            continue
        entry = methods[method]
        cfg = cell_config(entry['config'], dict(suite_options, **entry.get('cfg_options', {})),
                          dataset_overrides(first_dataset, method), 0, Path('unused/x/y'))
        cfg._cfg_dict.pop('work_dir')  # each prepare job has its own (next to its output)
        if kind == 'prototypes':
            # reused when up to date; a bank of another source at that path is refused, never overwritten
            out = Path(cfg.prototypes.file) if bank_is_current(cfg) else compute_prototypes(cfg)
        elif kind == 'prompts':
            out = Path(cfg.model.prompt_checkpoint)
            if not out.exists():
                train_cfg = load_config(step.pop('config'), suite_options)
                produced = train_prompts(train_cfg)
                out.parent.mkdir(parents=True, exist_ok=True)
                out.write_bytes(Path(produced).read_bytes())
        else:
            raise SuiteError(f"unknown prepare step '{kind}' (use 'prototypes' or 'prompts')")
        done.append(dict(step=kind, method=method, output=str(out)))
    return done


def _summary(values: list[float]) -> dict:
    if not values:
        return dict(mean=None, std=None, n=0, values=[])
    return dict(mean=statistics.fmean(values), std=statistics.stdev(values) if len(values) > 1 else 0.0,
                n=len(values), values=values)


#: what the extra tables (``suite.tables``) measure, as their headings say it
TABLE_TITLES = dict(top1='top-1 accuracy (%)', top5='top-5 accuracy (%)',
                    mean_class_top1='balanced accuracy: mean per-class top-1 (%)',
                    ece='expected calibration error (%, 15 equal-width bins; lower is better)',
                    pred_entropy='normalised entropy of the predicted-class histogram (1 = every class equally often; '
                                 'compare with label_entropy, what the stream holds)',
                    pred_max_share='share of the most predicted class (%; compare with label_max_share)',
                    label_entropy='normalised entropy of the label histogram (the stream)',
                    label_max_share='share of the most frequent label (%; the stream)')


def build_table(results: dict, datasets: Sequence[str], averages: Mapping[str, Sequence[str]], metric: str) -> dict:
    """Per method: per-dataset and average summaries of ``metric`` over seeds (averages are per seed first). A cell
    that did not measure ``metric`` counts as missing (its column shows '-', its seed has no average)."""
    def measured(r):
        return metric in (r.get('metrics') or {})
    table = {}
    for method, cells in results.items():
        row = {}
        for ds in datasets:
            row[ds] = _summary([r['metrics'][metric] for r in cells.get(ds, []) if measured(r)])
        for avg_name, cols in averages.items():
            per_seed = []
            seeds = {r['seed'] for ds in cols for r in cells.get(ds, []) if measured(r)}
            for seed in sorted(seeds):
                vals = [r['metrics'][metric] for ds in cols for r in cells.get(ds, [])
                        if measured(r) and r['seed'] == seed]
                if len(vals) == len(cols):
                    per_seed.append(statistics.fmean(vals))
            row[avg_name] = _summary(per_seed)
        table[method] = row
    return table


def run_suite(cfg: Config, work_dir: str | Path, methods: Sequence[str] | None = None, resume: bool = True,
              root: str | Path = '.') -> dict:
    spec = dict(cfg.get('suite') or {})
    if not spec.get('methods') or not spec.get('datasets'):
        raise SuiteError('a suite config needs suite=dict(methods=dict(...), datasets=dict(...))')
    work_dir = Path(work_dir)
    metric = spec.get('metric', 'top1')
    extra = list(spec.get('tables') or [])
    if not all(isinstance(m, str) for m in extra) or metric in extra:
        raise SuiteError(f"suite.tables must list metric names other than the main metric '{metric}', got {extra}")
    options = dict(spec.get('cfg_options') or {})
    datasets = {k: dict(v) for k, v in spec['datasets'].items()}
    averages = {k: list(v) for k, v in (spec.get('averages') or {}).items()}
    bad = [c for cols in averages.values() for c in cols if c not in datasets]
    if bad:
        raise SuiteError(f'averages name unknown datasets {bad}; datasets: {list(datasets)}')
    chosen = _methods(spec['methods'], Path(root), methods, list(spec.get('seeds', [0])))
    started = time.time()
    lock = WorkDirLock(work_dir).acquire()  # one suite process per work dir
    try:
        prepared = _prepare(spec.get('prepare') or [], chosen, options, datasets) if spec.get('prepare') else []
        training = SuiteTraining(spec.get('train') or {}, chosen, datasets, work_dir, Path(root), resume, SuiteError)

        def config_of(method: str, ds: str, seed: int, run_dir: Path = Path('unused/x/y')) -> Config:
            entry = chosen[method]
            return cell_config(entry['config'], dict(options, **entry.get('cfg_options', {})),
                               dataset_overrides(datasets[ds], method), seed, run_dir)
        prepared += training.run(config_of)
        results = _run_cells(chosen, datasets, config_of, training, work_dir, resume, metric)
    finally:
        lock.release()
    table = build_table(results, list(datasets), averages, metric)
    tables = {m: build_table(results, list(datasets), averages, m) for m in extra}
    layout = spec.get('layout', 'plain')
    if layout not in LAYOUTS:
        raise SuiteError(f"suite.layout='{layout}' is not one of {sorted(LAYOUTS)}")
    out = dict(name=spec.get('name', 'suite'), metric=metric, datasets=list(datasets), averages=averages,
               layout=layout, reference=dict(spec['reference']) if spec.get('reference') else None,
               methods={m: dict(config=e['config'], seeds=e['seeds']) for m, e in chosen.items()},
               prepared=prepared, table=table, tables=tables, cells=results, wall_s=round(time.time() - started, 1),
               failed=[r['dir'] for c in results.values() for rs in c.values() for r in rs if r['status'] == 'failed'])
    write_suite(out, work_dir)
    return out


def _run_cells(chosen: dict, datasets: dict, config_of, training: SuiteTraining, work_dir: Path, resume: bool,
               metric: str) -> dict[str, dict[str, list]]:
    results: dict[str, dict[str, list]] = {}
    progress = CellProgress(sum(len(datasets) * len(e['seeds']) for e in chosen.values()), 'suite')
    for method, entry in chosen.items():
        for ds, ds_entry in datasets.items():
            for seed in entry['seeds']:
                run_dir = work_dir / 'cells' / method / ds.replace('/', '_') / f'seed{seed}'
                progress.start(f'{method} / {ds} / seed {seed}')
                cfg_cell = config_of(method, ds, seed, run_dir)
                missing = training.apply(cfg_cell, method, dataset_group(ds, ds_entry), seed)
                if missing:  # its trained prompts or bank failed: recorded, the suite goes on
                    rec = dict(status='failed', error=missing, metrics={})
                else:
                    rec = run_one(cfg_cell, run_dir, resume)
                progress.done(rec)
                rec.update(seed=seed, dir=str(run_dir))
                results.setdefault(method, {}).setdefault(ds, []).append(rec)
                logger.info('%s / %s / seed %d: %s %s', method, ds, seed, rec['status'],
                            (rec.get('metrics') or {}).get(metric))
    return results


def write_suite(out: dict, work_dir: Path) -> str:
    """Write benchmark.md / benchmark.json / benchmark.png (linked from the .md; a failing plot is only a warning);
    returns the table as text (in the suite's layout)."""
    work_dir.mkdir(parents=True, exist_ok=True)
    headers, rows = LAYOUTS[out.get('layout', 'plain')](out)
    seeds = {m: e['seeds'] for m, e in out['methods'].items()}
    note = (f"{out['metric']} (%); mean ± sample std over seeds {seeds}; averages are taken per seed, then "
            'summarised; rows marked (paper) are published numbers (promptsync/evaluation/data/'
            'published_results.json, with sources).')
    skipped = [f"{r['dir']}: {r['num_skipped']}" for c in out['cells'].values() for rs in c.values() for r in rs
               if r.get('num_skipped')]
    if skipped:
        note += f" Unreadable images were skipped (see each cell's skipped.jsonl): {'; '.join(skipped)}."
    md = tabulate(rows, headers=headers, tablefmt='github', disable_numparse=True)  # cells are formatted
    for name, table in (out.get('tables') or {}).items():  # same layout, no published rows (they are top-1)
        h, r = LAYOUTS[out.get('layout', 'plain')](dict(out, table=table, reference=None, metric=name))
        md += (f"\n\n## {name}: {TABLE_TITLES.get(name, name)}\n\n"
               + tabulate(r, headers=h, tablefmt='github', disable_numparse=True))
    plot = plot_safely(suite_bars, out, path=work_dir / 'benchmark.png')
    figure = f"\n![{out['metric']} per method and dataset]({plot.name})\n" if plot else ''
    (work_dir / 'benchmark.md').write_text(f"# {out['name']}\n\n{note}\n\n{md}\n{figure}")
    (work_dir / 'benchmark.json').write_text(json.dumps(copy.deepcopy(out), indent=2, default=str) + '\n')
    return suite_text(out)


def suite_text(out: dict) -> str:
    """The main table as plain text (what tools print), in the suite's layout; writes nothing."""
    headers, rows = LAYOUTS[out.get('layout', 'plain')](out)
    return tabulate(rows, headers=headers, tablefmt='simple', disable_numparse=True)
