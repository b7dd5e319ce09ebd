"""The results of a TTA run, once every selected sample is predicted (or skipped): ``metrics.json``,
``results.md`` and the final ``run.json``; also the merge of ``--shard`` jobs (``tools/merge_shards.py``)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from mmengine.config import Config
from tabulate import tabulate

from promptsync.datasets.view_dataset import SKIPPED_LISTED
from promptsync.errors import ConfigError, DataError, ProvenanceError
from promptsync.evaluation import PredictionTable, compute_metrics, per_class_accuracy, read_records
from promptsync.registry import METRICS
from promptsync.utils.logging import get_logger
from promptsync.visualization.reliability import reliability_diagram
from promptsync.visualization.safe import plot_safely

from ..shards import PREDICTIONS, SKIPPED, merge_into, read_shard_file, shard_dirs, write_json
from .evaluation import DEFAULT_METRICS

logger = get_logger('test')


def merge_summaries(summaries: list[dict]) -> dict:
    """Method counters of several shards: integers summed, everything else from the first shard."""
    if not summaries:
        return {}
    out = dict(summaries[0])
    for key, value in out.items():
        if isinstance(value, int) and not isinstance(value, bool):
            out[key] = sum(int(s.get(key) or 0) for s in summaries)
    return out


def combine_parts(parts: list[dict]) -> dict:
    """Run counters over shards: new/resumed summed; time summed, and the wall clock of the slowest shard."""
    timing = dict(data_s=round(sum(p['timing']['data_s'] for p in parts), 3),
                  tta_s=round(sum(p['timing']['tta_s'] for p in parts), 3),
                  wall_s=max(p['timing']['wall_s'] for p in parts))
    new = sum(p['num_new'] for p in parts)
    timing['tta_ms_per_sample'] = round(1000 * timing['tta_s'] / new, 2) if new else None
    return dict(num_new=new, num_resumed=sum(p['num_resumed'] for p in parts), timing=timing)


def finalize(work_dir: Path, wanted: set[int], metrics: list, info: dict, parts: list[dict], run_json: dict) -> dict:
    """Metrics over every selected sample of the (merged) files in ``work_dir``; writes metrics.json, run.json,
    results.md and returns what metrics.json holds. Refuses when a selected sample is missing."""
    by_index = {r['index']: r for r in read_records(work_dir / PREDICTIONS) if r['index'] in wanted}
    records = [by_index[i] for i in sorted(by_index)]
    skipped = [r for r in read_records(work_dir / SKIPPED) if r['index'] in wanted and r['index'] not in by_index]
    missing = wanted - set(by_index) - {r['index'] for r in skipped}
    if missing:
        raise ProvenanceError(f'{len(missing)} selected samples have neither a prediction nor a skip record '
                              f'(first: {sorted(missing)[:5]}); the shards are incomplete', where=str(work_dir),
                              fix='re-run the same command: it resumes and fills them in')
    if not records:
        raise DataError(f'none of the {len(wanted)} selected images could be read (listed in {work_dir / SKIPPED})',
                        where='data.dataset', fix='check the data root and files')
    classes = run_json.get('classes') or []
    table = PredictionTable.from_records(records, len(classes) or None)
    values = compute_metrics(metrics, table)
    failed = [r['index'] for r in records if r.get('nonfinite')]
    if failed:
        logger.warning('%d of %d samples had non-finite logits and count as wrong (first: %s)', len(failed),
                       len(records), failed[:5])
    if skipped:
        logger.warning('%d of %d images could not be read and were skipped (listed in %s); the metrics are over the '
                       '%d predicted images. Fix or remove the files and re-run the same command to retry them.',
                       len(skipped), len(wanted), work_dir / SKIPPED, len(records))
    out = dict(info, metrics=values,
               metrics_over='predicted images (num_samples); skipped images are excluded; samples with non-finite '
                            'logits count as wrong',
               num_samples=len(records), num_skipped=len(skipped), num_nonfinite=len(failed), num_selected=len(wanted),
               skipped_paths=[r['path'] for r in skipped[:SKIPPED_LISTED]], nonfinite_indices=failed[:SKIPPED_LISTED],
               method_stats=merge_summaries([p['method_stats'] for p in parts]),
               per_class=per_class_accuracy(table, classes))
    write_json(work_dir / 'metrics.json', out)
    write_json(work_dir / 'run.json', run_json)
    bins = next((int(getattr(m, 'bins')) for m in metrics if hasattr(m, 'bins')), 15)  # the ECE metric's bins
    plot_safely(reliability_diagram, table.confidence, table.topk[:, 0] == table.labels, bins,
                path=work_dir / 'reliability.png', title=f"{info['run_name']} ({info['dataset']})")
    (work_dir / 'results.md').write_text(results_table(out, run_json.get('timing'), fmt='github') + '\n')
    logger.info('results in %s', work_dir)
    return out


def merge_complete_shards(work_dir: str | Path, merged_by: str = 'tools/merge_shards.py') -> dict:
    """Merge the finished ``--shard`` jobs of ``work_dir`` into its top-level files (``tools/merge_shards.py``, or
    the last shard to finish)."""
    work_dir = Path(work_dir)
    dirs = shard_dirs(work_dir)
    states = [read_shard_file(d) for d in dirs]
    if not dirs:
        raise ConfigError(f'{work_dir} has no shards to merge', where=str(work_dir / 'shards'),
                          fix='run the --shard I/N jobs first (they write <work dir>/shards/I-of-N/)')
    worlds = {tuple(s.get('shard') or ())[1:] for s in states}
    fps = {s.get('fingerprint') for s in states}
    selections = {json.dumps(s.get('selection'), sort_keys=True) for s in states}
    if len(worlds) != 1 or len(fps) != 1 or len(selections) != 1:
        raise ProvenanceError(f'the shards in {work_dir / "shards"} belong to different runs (shard counts {worlds}, '
                              f'fingerprints {fps})', where=str(work_dir / 'shards'),
                              fix='delete the stale shard folders and re-run those shards')
    n = next(iter(worlds))[0]
    unfinished = sorted(set(range(n)) - {s['shard'][0] for s in states if s.get('done')})
    if unfinished:
        raise ProvenanceError(f'{len(unfinished)} of {n} shards have not finished: {unfinished}; nothing was merged',
                              where=str(work_dir / 'shards'), fix='run (or re-run, it resumes) those shards first')
    cfg = Config.fromfile(str(dirs[0] / 'config.py'))
    shutil.copyfile(dirs[0] / 'config.py', work_dir / 'config.py')  # the shards' (identical) resolved config
    metrics = [METRICS.build(dict(m)) for m in cfg.get('metrics') or DEFAULT_METRICS]
    wanted = {i for s in states for i in s['indices']}
    merge_into(work_dir, dirs)
    combined = combine_parts(states)
    run_json = dict(states[0].get('run') or states[0]['info'], status='done', merged_by=merged_by,
                    selection=states[0]['selection'], timing=combined['timing'], num_new=combined['num_new'],
                    num_resumed=combined['num_resumed'],
                    shards=[dict(shard=s['shard'], timing=s['timing'], command=(s.get('run') or {}).get('command'),
                                 device=(s.get('run') or {}).get('device')) for s in states])
    out = finalize(work_dir, wanted, metrics, states[0]['info'], states, run_json)
    return dict(out, **combined)


def results_table(info: dict, timing: dict | None, fmt: str = 'simple') -> str:
    row = dict(run=info['run_name'], dataset=info['dataset'], method=info['method'],
               prompts=info['prompt_learner'], n=info['num_samples'])
    if info.get('num_skipped'):  # unreadable images: not in n, not in the metrics
        row['skipped'] = info['num_skipped']
    if info.get('num_nonfinite'):
        row['failed'] = info['num_nonfinite']
    row.update({k: round(v, 2) for k, v in info['metrics'].items()})
    ms = (timing or {}).get('tta_ms_per_sample')
    row['ms/img'] = round(ms, 1) if ms is not None else '-'
    return tabulate([row], headers='keys', tablefmt=fmt)
