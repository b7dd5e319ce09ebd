"""Read the adaptation recording of a run dir (every shard's files), checked against the run's predictions.

A line recomputed after an interruption is the same line; the last one of an index is kept. When the run has
predictions, only the predicted samples are analysed and each line's adapted prediction must be the one in the
predictions (else the recording belongs to another run and nothing is reported).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from promptsync.errors import ConfigError, ProvenanceError, ResourceError
from promptsync.evaluation.predictions import read_records

from . import layout
from .text_sums import TextSums

HOW_TO_RECORD = ("record it: add custom_hooks=[dict(type='AdaptationRecorder')] to the config (or put "
                 "'../_base_/analysis.py' in its _base_, or pass --cfg-options \"custom_hooks=[dict(type="
                 "'AdaptationRecorder')]\") and run tools/test.py again with --no-resume (the hooks are part of the "
                 "run's fingerprint, so the earlier predictions are not reused)")


@dataclass
class RunRecording:
    name: str
    path: Path
    meta: dict
    records: list[dict]                      # one per analysed sample, sorted by index
    sums: TextSums | None                    # the text-shift sums of the samples they cover
    notes: list[str] = field(default_factory=list)  # what the reader had to leave out, said in the report

    @property
    def sums_cover_all(self) -> bool:
        return self.sums is not None and set(self.sums.indices) == measured(self.records)


def measured(records: list[dict]) -> set[int]:
    """The samples with numbers (not failed): the ones the text-shift sums add up."""
    return {r['index'] for r in records if not r.get('failed')}


def _run_name(run_dir: Path) -> str:
    for name in ('run.json', 'metrics.json'):
        try:
            value = json.loads((run_dir / name).read_text()).get('run_name')
        except (OSError, ValueError):
            continue
        if value:
            return str(value)
    return run_dir.name


def _predictions(run_dir: Path) -> dict[int, dict]:
    """The run's predictions by index (the merged file, then any shard's unmerged ones)."""
    out: dict[int, dict] = {}
    for path in sorted(run_dir.glob('shards/*/predictions.jsonl')) + [run_dir / 'predictions.jsonl']:
        out.update({r['index']: r for r in read_records(path)})
    return out


def load_run(run_dir: str | Path, name: str | None = None) -> RunRecording:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError(f'{run_dir} is not a directory', where=str(run_dir), fix='pass the work dir of a test run')
    tags = layout.record_tags(run_dir)
    if not tags:
        raise ResourceError(f'{run_dir} has no adaptation recording (no {layout.RECORDS})', where=str(run_dir),
                            fix=HOW_TO_RECORD)
    metas = {t: json.loads(layout.meta_path(run_dir, t).read_text()) for t in tags
             if layout.meta_path(run_dir, t).is_file()}
    if len(metas) != len(tags):
        missing = sorted(set(tags) - set(metas))
        raise ProvenanceError(f'{run_dir}: the recording of {missing} has no {layout.META}', where=str(run_dir),
                              fix='record the run again (' + HOW_TO_RECORD.split(': ', 1)[1] + ')')
    fingerprints = {m.get('fingerprint') for m in metas.values()}
    if len(fingerprints) != 1:
        raise ProvenanceError(f'{run_dir}: the shards were recorded by different configs (fingerprints '
                              f'{sorted(map(str, fingerprints))})', where=str(run_dir),
                              fix='record the run again with --no-resume')
    by_index: dict[int, dict] = {}
    for t in tags:
        by_index.update({r['index']: r for r in read_records(layout.records_path(run_dir, t))})
    notes = []
    predictions = _predictions(run_dir)
    if predictions:
        _check_against(run_dir, by_index, predictions)
        unpredicted = set(by_index) - set(predictions)
        if unpredicted:
            notes.append(f'{len(unpredicted)} recorded samples have no prediction yet (an interrupted run): left out')
        missing = set(predictions) - set(by_index)
        if missing:
            notes.append(f'{len(missing)} predicted samples have no recording line (first: {sorted(missing)[:5]})')
        by_index = {i: r for i, r in by_index.items() if i in predictions}
    else:
        notes.append('the run dir has no predictions to check the recording against')
    records = [by_index[i] for i in sorted(by_index)]
    sums = _sums(run_dir, measured(records), notes)
    return RunRecording(name or _run_name(run_dir), run_dir, next(iter(metas.values())), records, sums, notes)


def _check_against(run_dir: Path, recorded: dict[int, dict], predictions: dict[int, dict]) -> None:
    wrong = [i for i, r in recorded.items() if i in predictions and
             (r['pred'] != predictions[i]['pred'] or r['label'] != predictions[i]['label'])]
    if wrong:
        i = wrong[0]
        raise ProvenanceError(f'{run_dir}: the adaptation recording does not belong to these predictions: {len(wrong)} '
                              f'samples differ (index {i}: recorded pred {recorded[i]["pred"]} label '
                              f'{recorded[i]["label"]}, predictions.jsonl pred {predictions[i]["pred"]} label '
                              f'{predictions[i]["label"]})', where=str(run_dir),
                              fix='record the run again with --no-resume')


def _sums(run_dir: Path, analysed: set[int], notes: list[str]) -> TextSums | None:
    parts = [TextSums.load(path) for _, _, path in layout.sums_files(run_dir)]
    if not parts:
        notes.append('no text-shift sums were saved: no across-sample variance')
        return None
    try:
        sums = TextSums.combine(parts)
    except ValueError as err:
        raise ProvenanceError(f'{run_dir}: the text-shift sums cannot be combined: {err}',
                              where=str(run_dir / layout.SUMS_DIR),
                              fix='record the run again with --no-resume') from None
    covered = set(sums.indices)
    if covered - analysed:
        raise ProvenanceError(f'{run_dir}: the text-shift sums cover {len(covered - analysed)} samples without a '
                              'measured recording line or a prediction', where=str(run_dir / layout.SUMS_DIR),
                              fix='record the run again with --no-resume')
    if covered != analysed:
        notes.append(f'the across-sample variance is over the {len(covered)} of {len(analysed)} measured samples whose '
                     'sums were saved (an interrupted session loses the sums since its last save)')
    return sums
