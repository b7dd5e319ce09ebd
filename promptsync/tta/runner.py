"""``TTARunner``: the test loop (data -> TTA method -> prediction records -> metrics), resumable.

Predictions are appended to ``predictions.jsonl`` after every batch. A re-run with the same config
fingerprint in the same work dir skips the samples already predicted; a different fingerprint is
refused, so results of two configs never mix.

Unreadable images (corrupt, truncated, empty, not an image) are skipped, never silently: each one is appended
to ``skipped.jsonl`` (``index, path, error``) with the batch it came in, the first one of a run is named in a
log warning, and ``metrics.json`` states ``num_skipped`` and the first skipped paths. The metrics are computed
over the predicted images only. Resume retries every selected image that has no prediction, skipped ones
included (the file may have been fixed), so the count is that of the last complete run: at its end
``skipped.jsonl`` is rewritten to the images that still have no prediction (one line each, the latest error).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Sequence

from torch.utils.data import DataLoader

from promptsync.datasets.view_dataset import SKIPPED_LISTED, collate_views
from promptsync.evaluation import PredictionTable, PredictionWriter, compute_metrics, read_records, to_record
from promptsync.evaluation.predictions import drop_torn_tail
from promptsync.utils.logging import get_logger

logger = get_logger('runner')


class TTARunner:
    """Args:
        method: a built TTA method; dataset: a ``ViewDataset`` over all selected indices.
        metrics: built metrics; hooks: the ``HookList`` shared with the method.
        fingerprint: the config fingerprint recorded in ``run.json``.
    """

    def __init__(self, method, view_dataset, metrics: Sequence, hooks, work_dir: Path, run_name: str,
                 fingerprint: str, batch_size: int = 1, num_workers: int = 0, resume: bool = True,
                 run_info: dict[str, Any] | None = None):
        self.method, self.view_dataset, self.metrics, self.hooks = method, view_dataset, list(metrics), hooks
        self.work_dir = Path(work_dir)
        self.run_name = run_name
        self.fingerprint = fingerprint
        self.batch_size, self.num_workers = batch_size, num_workers
        self.resume = resume
        self.run_info = dict(run_info or {})
        self.predictions_path = self.work_dir / 'predictions.jsonl'
        self.skipped_path = self.work_dir / 'skipped.jsonl'
        self.resumed_count = self.resumed_correct = 0
        self.skipped: list[dict] = []        # images of this run that could not be read (index, path, error)

    # ------------------------------------------------------------------ resume bookkeeping
    def _previous_records(self) -> list[dict]:
        run_file = self.work_dir / 'run.json'
        if not self.predictions_path.exists():
            self.skipped_path.unlink(missing_ok=True)  # no run to resume: its skipped list is stale
            return []
        old = json.loads(run_file.read_text()).get('fingerprint') if run_file.exists() else None
        if not self.resume:
            self.predictions_path.unlink()
            self.skipped_path.unlink(missing_ok=True)
            return []
        if old != self.fingerprint:
            raise RuntimeError(
                f'{self.work_dir} holds predictions of a different config (fingerprint {old}, now {self.fingerprint}).'
                ' Use another --work-dir, or --no-resume to discard them.')
        for path in (self.predictions_path, self.skipped_path):
            if drop_torn_tail(path):
                logger.warning('dropped a partial last line of %s (an interrupted write)', path)
        wanted = set(self.view_dataset.indices)
        return list({r['index']: r for r in read_records(self.predictions_path) if r['index'] in wanted}.values())

    def _write_run_file(self, started: float) -> None:
        info = dict(self.run_info, fingerprint=self.fingerprint, run_name=self.run_name,
                    started=time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(started)))
        (self.work_dir / 'run.json').write_text(json.dumps(info, indent=2) + '\n')

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict[str, Any]:
        started = time.time()
        previous = self._previous_records()
        done = {r['index'] for r in previous}
        self.resumed_count = len(previous)
        self.resumed_correct = sum(int(r['correct']) for r in previous)
        if previous:
            logger.info('resuming: %d of %d samples already predicted in %s', len(previous),
                        len(self.view_dataset), self.predictions_path)
        self._write_run_file(started)
        todo = [i for i in self.view_dataset.indices if i not in done]  # skipped images of a previous run: retried
        dataset = type(self.view_dataset)(self.view_dataset.dataset, self.view_dataset.views,
                                          self.view_dataset.seed, todo, skip_unreadable=True)
        loader = DataLoader(dataset, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers,
                            collate_fn=collate_views)
        writer = PredictionWriter(self.predictions_path)
        skip_writer = PredictionWriter(self.skipped_path)
        data_s = tta_s = 0.0
        new = 0
        self.skipped = []
        self.hooks.call('before_run', self)
        try:
            tick = time.perf_counter()
            for batch in loader:
                t_data = time.perf_counter()
                self._record_skipped(batch['skipped'], skip_writer)
                results = self.method.process_batch(batch) if len(batch['index']) else []
                t_tta = time.perf_counter()
                writer.write(to_record(r) for r in results)
                self.hooks.call('after_batch', results)
                data_s += t_data - tick
                tta_s += t_tta - t_data
                new += len(results)
                tick = time.perf_counter()
        finally:
            writer.close()
            skip_writer.close()
        wanted = set(self.view_dataset.indices)
        all_records = read_records(self.predictions_path)
        by_index = {r['index']: r for r in all_records if r['index'] in wanted}
        records = [by_index[i] for i in sorted(by_index)]
        skipped = self._final_skipped({r['index'] for r in all_records}, wanted)
        metrics = compute_metrics(self.metrics, PredictionTable.from_records(records))
        result = dict(metrics=metrics, metrics_over='predicted images (num_samples); skipped images are excluded',
                      num_samples=len(records), num_skipped=len(skipped), num_selected=len(wanted),
                      skipped_paths=[r['path'] for r in skipped[:SKIPPED_LISTED]], num_new=new,
                      num_resumed=self.resumed_count,
                      timing=dict(data_s=round(data_s, 3), tta_s=round(tta_s, 3),
                                  tta_ms_per_sample=round(1000 * tta_s / new, 2) if new else None,
                                  wall_s=round(time.time() - started, 3)),
                      method_stats=self.method.summary())
        if skipped:
            logger.warning('%d of %d images could not be read and were skipped (listed in %s); the metrics are '
                           'over the %d predicted images. Fix or remove the files and re-run the same command '
                           'to retry them.', len(skipped), len(wanted), self.skipped_path, len(records))
        (self.work_dir / 'metrics.json').write_text(json.dumps(dict(self.run_info, **result), indent=2) + '\n')
        self.hooks.call('after_run', self, result)
        return result

    # ------------------------------------------------------------------ unreadable images
    def _record_skipped(self, records: list[dict], writer: PredictionWriter) -> None:
        if not records:
            return
        if not self.skipped:
            first = records[0]
            logger.warning('skipping unreadable image %s (index %d): %s; every skipped image is recorded in %s',
                           first['path'], first['index'], first['error'], self.skipped_path)
        self.skipped.extend(records)
        writer.write(records)

    def _final_skipped(self, predicted: set[int], wanted: set[int]) -> list[dict]:
        """Rewrite ``skipped.jsonl`` to the images that still have no prediction; return the selected ones.

        Every selected image without a prediction was attempted by this (complete) run, so its latest line is
        this run's. Lines of images outside this run's selection (another shard or subset) are kept.
        """
        latest = {r['index']: r for r in read_records(self.skipped_path) if r['index'] not in predicted}
        tmp = self.skipped_path.with_name(self.skipped_path.name + '.tmp')
        tmp.write_text(''.join(json.dumps(latest[i]) + '\n' for i in sorted(latest)))
        tmp.replace(self.skipped_path)
        return [latest[i] for i in sorted(latest) if i in wanted]

    @property
    def num_samples(self) -> int:
        return len(self.view_dataset)

    @property
    def num_skipped(self) -> int:
        """Images skipped so far in this run (read by the progress bar)."""
        return len(self.skipped)
