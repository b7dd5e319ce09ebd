"""``TTALoop``: data -> TTA method -> one prediction line per sample -> metrics; resumable per sample, sharded.

Predictions are appended after every batch (nothing computed is lost). A re-run with the same fingerprint
(config + file contents, :mod:`..provenance`) skips the samples already predicted; another fingerprint is
refused, so results of two configs or two checkpoints never mix. Under a launcher each rank evaluates its shard
(:mod:`..shards`) and rank 0 merges; a ``--shard i/n`` job writes its shard and the last one to finish merges.
The merged ``predictions.jsonl`` and ``metrics.json`` equal those of one process.

Unreadable images are skipped, never silently: each goes to ``skipped.jsonl`` (``index, path, error``), the
first is named in a warning, and ``metrics.json`` states ``num_skipped``; a resumed run retries them. A sample
whose logits are not finite is recorded as failed (counted wrong, ``num_nonfinite``), never scored as a class.
``metrics.json`` holds only what the predictions determine; how the run went (timing, new/resumed counts,
versions, command, device) is in ``run.json``.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from mmengine.runner import BaseLoop
from torch.utils.data import DataLoader

from promptsync.datasets import ViewDataset
from promptsync.datasets.view_dataset import collate_views
from promptsync.errors import ConfigError, LockError, ProvenanceError
from promptsync.evaluation import PredictionWriter, read_records, to_record
from promptsync.evaluation.predictions import is_finite
from promptsync.hooks import Progress
from promptsync.registry import LOOPS
from promptsync.utils.logging import get_logger

from .. import dist
from ..lock import WorkDirLock
from ..shards import (PREDICTIONS, SHARD_FILE, SHARDS_DIR, SKIPPED, check_shards, clean_tails, merge_into, read_shard_file,
                      shard_dir, shard_indices, write_json)
from .evaluation import build_evaluation, check_bank, class_table, run_resources
from .online_state import STATE, OnlineState, refuse_shards
from .tta_results import combine_parts, finalize, merge_complete_shards, results_table  # noqa: F401

logger = get_logger('test')


@LOOPS.register_module()
class TTALoop(BaseLoop):
    """Args: ``state_every_s``: an online method's state is saved at most this often (seconds; 0 = after every batch)
    and at the end of the stream (:mod:`.online_state`)."""

    def __init__(self, runner, dataloader=None, state_every_s: float = 60.0):
        super().__init__(runner, dataloader)
        if isinstance(state_every_s, bool) or not isinstance(state_every_s, (int, float)) or state_every_s < 0:
            raise ConfigError(f'test_cfg.state_every_s must be a number of seconds >= 0, got {state_every_s!r}',
                              where='test_cfg.state_every_s')
        self.state_every_s = float(state_every_s)

    # ------------------------------------------------------------------ preparation
    def _prepare(self) -> None:
        runner, cfg = self.runner, self.runner.cfg
        self.fingerprint, self.files = runner.fingerprint, runner.files
        self.method_resources = run_resources(cfg)
        bank = self.method_resources.get('prototypes')
        self.bank = check_bank(cfg, bank) if bank else None
        self.ev = build_evaluation(cfg, runner.device, runner.hooks, self.method_resources, runner.check_data)
        data = dict(cfg.data)
        bs = int(data.get('batch_size') or 1)
        if bs < 1:
            raise ConfigError(f'data.batch_size must be >= 1, got {bs}', where='data.batch_size')
        self.batch_size, self.num_workers = bs, int(data.get('num_workers') or 0)
        self.selection = dict(max_samples=data.get('max_samples'), subset_seed=int(data.get('subset_seed') or 0),
                              stream=data.get('stream'))
        self.shard = runner.shard
        self.online = None
        if getattr(self.ev.method, 'stateful', False):
            refuse_shards(self.ev.method_name, self.shard)
            self.online = OnlineState(self.ev.method, runner.work_dir, self.fingerprint, list(self.ev.indices),
                                      self.state_every_s)
        self.mine = shard_indices(self.ev.indices, self.shard, bs)
        self.wanted = set(self.ev.indices)
        self.work_dir = Path(runner.work_dir)
        self.out_dir = self.work_dir if self.shard is None else shard_dir(self.work_dir, self.shard)
        source = Path(cfg.filename or 'run')
        self.run_name = cfg.get('run_name') or f'{source.parent.name}/{source.stem}'
        ds, model = self.ev.dataset, self.ev.model
        self.info = dict(run_name=self.run_name, dataset=getattr(ds, 'name', type(ds).__name__),
                         method=self.ev.method_name, prompt_learner=type(model.prompt_learner).__name__,
                         backbone=model.backbone.model_name, pretrained=str(model.backbone.pretrained),
                         seed=self.ev.seed, fingerprint=self.fingerprint)
        if self.ev.stream:
            self.info['stream'] = self.ev.stream
        if self.online is not None:
            self.info['online'] = 'one stream on one process; the method state is carried from sample to sample'
        self.classes = class_table(ds)
        if getattr(ds, 'class_mapping', None):
            shown = '; '.join(f"{c['label']}: {c.get('folder')} -> {c['name']}" for c in self.classes[:20])
            logger.info('labels (folder -> class name): %s%s', shown, ' ...' if len(self.classes) > 20 else '')

    def _refuse_other_config(self, directory: Path, recorded: str | None) -> None:
        raise ProvenanceError(
            f'{directory} holds predictions of a different config or different files (fingerprint {recorded}, '
            f'now {self.fingerprint}); the config, a checkpoint or the prototype bank changed',
            where=str(directory / PREDICTIONS),
            fix='use another --work-dir, or --no-resume to discard them (run.json lists the files and hashes)')

    def _start_files(self) -> None:
        """Check (and fold in) what earlier runs left; the owner writes ``run.json``."""
        runner, top = self.runner, self.work_dir
        if runner.owns_work_dir:
            if not runner.resume:
                for name in (PREDICTIONS, SKIPPED, 'metrics.json', STATE):
                    (top / name).unlink(missing_ok=True)
                shutil.rmtree(top / SHARDS_DIR, ignore_errors=True)
            else:
                clean_tails(top / PREDICTIONS, top / SKIPPED)  # an interrupted write's partial last line
                recorded = _recorded_fingerprint(top)
                if (top / PREDICTIONS).exists() and recorded != self.fingerprint:
                    self._refuse_other_config(top, recorded)
                dirs = check_shards(top, self.fingerprint)
                if dirs:
                    n = merge_into(top, dirs)
                    logger.info('folded %d predictions of an interrupted sharded run into %s', n, top / PREDICTIONS)
            self._write_run_json(status='running')
        elif self.runner.shard_arg is not None:  # a --shard job: only its own dir is written
            if runner.resume:
                recorded = _recorded_fingerprint(top)
                if (top / PREDICTIONS).exists() and recorded != self.fingerprint:
                    self._refuse_other_config(top, recorded)
                own = read_shard_file(self.out_dir).get('fingerprint')
                if (self.out_dir / PREDICTIONS).exists() and own != self.fingerprint:
                    self._refuse_other_config(self.out_dir, own)
            else:
                for name in (PREDICTIONS, SKIPPED, SHARD_FILE):
                    (self.out_dir / name).unlink(missing_ok=True)
        dist.barrier()
        if self.out_dir != top:
            self.out_dir.mkdir(parents=True, exist_ok=True)
            write_json(self.out_dir / SHARD_FILE, dict(fingerprint=self.fingerprint, selection=self.selection,
                                                       shard=list(self.shard), done=False, info=self.info,
                                                       indices=self.mine))
        if self.out_dir != top:  # each process cleans only the files it appends to
            clean_tails(self.out_dir / PREDICTIONS, self.out_dir / SKIPPED)

    def _previous(self) -> dict[int, dict]:
        mine = set(self.mine)
        sources = [self.out_dir / PREDICTIONS]
        if self.out_dir != self.work_dir and (self.runner.resume or self.runner.distributed):
            sources.insert(0, self.work_dir / PREDICTIONS)
        return {r['index']: r for path in sources for r in read_records(path) if r['index'] in mine}

    def _run_json(self, status: str, **extra) -> dict:
        runner = self.runner
        return dict(self.info, **runner.run_info(), status=status, selection=self.selection, files=self.files,
                    prototype_bank=self.bank, resources=[r.__dict__ for r in runner.resources],
                    classes=self.classes, **extra)

    def _write_run_json(self, status: str, **extra) -> None:
        write_json(self.work_dir / 'run.json', self._run_json(status, **extra))

    # ------------------------------------------------------------------ the loop
    def run(self) -> dict:
        runner = self.runner
        started = time.time()
        self._prepare()
        self._start_files()
        previous = self._previous()
        if self.online is not None:  # the saved state says where the stream goes on (skipped images are not retried)
            previous = self.online.resume(previous)
            todo = self.mine[len(self.online.done):]
        else:
            todo = [i for i in self.mine if i not in previous]  # skipped images of a previous run: retried
        if previous:
            logger.info('resuming: %d of %d samples already predicted', len(previous), len(self.mine))
        runner.ledger.listed_in = str(self.work_dir / SKIPPED)
        progress = Progress(total=len(self.mine), done=len(previous), desc=self.run_name +
                            (f' [shard {self.shard[0]}/{self.shard[1]}]' if self.shard else ''))
        runner.progress['test'] = progress
        correct, predicted = sum(int(r['correct']) for r in previous.values()), len(previous)
        loader = DataLoader(ViewDataset(self.ev.dataset, self.ev.views, self.ev.seed, todo, skip_unreadable=True),
                            batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers,
                            collate_fn=collate_views)
        writer, skip_writer = PredictionWriter(self.out_dir / PREDICTIONS), PredictionWriter(self.out_dir / SKIPPED)
        data_s = tta_s = 0.0
        new = nonfinite = 0
        runner.hooks.call('before_test')
        runner.hooks.call('before_test_epoch')
        try:
            tick = time.perf_counter()
            for batch_idx, batch in enumerate(loader):
                t_data = time.perf_counter()
                skip_writer.write(runner.ledger.add(batch['skipped'], 'test'))
                runner.hooks.call('before_test_iter', batch_idx=batch_idx, data_batch=batch)
                results = self.ev.method.process_batch(batch) if len(batch['index']) else []
                t_tta = time.perf_counter()
                for r in results:
                    if not is_finite(r):
                        if not nonfinite:
                            logger.warning('sample %d (%s): non-finite logits after adaptation; it is recorded as '
                                           'failed (counted wrong, num_nonfinite in metrics.json) — check the '
                                           'precision (fp16 overflows) and the learning rate', r.index, r.path)
                        nonfinite += 1
                records = [to_record(r) for r in results]
                writer.write(records)
                if self.online is not None:
                    self.online.advance([int(i) for i in batch['index']] + [int(r['index']) for r in batch['skipped']])
                new += len(records)
                predicted += len(records)
                correct += sum(int(rec['correct']) for rec in records)
                postfix = dict(top1=f'{100.0 * correct / max(predicted, 1):.2f}')
                if runner.ledger.count('test'):
                    postfix['skipped'] = runner.ledger.count('test')
                progress.advance(len(records) + len(batch['skipped']), **postfix)
                runner.hooks.call('after_test_iter', batch_idx=batch_idx, data_batch=batch, outputs=results)
                data_s += t_data - tick
                tta_s += t_tta - t_data
                tick = time.perf_counter()
            if self.online is not None:
                self.online.save()
        finally:
            writer.close()
            skip_writer.close()
        timing = dict(data_s=round(data_s, 3), tta_s=round(tta_s, 3), wall_s=round(time.time() - started, 3),
                      tta_ms_per_sample=round(1000 * tta_s / new, 2) if new else None)
        mine = dict(num_new=new, num_resumed=len(previous), nonfinite_new=nonfinite, timing=timing,
                    method_stats=self.ev.method.summary())
        result = self._finish(mine)
        runner.hooks.call('after_test_epoch', metrics=(result or {}).get('metrics'))
        runner.hooks.call('after_test')
        return result

    # ------------------------------------------------------------------ merging and metrics
    def _finish(self, mine: dict) -> dict | None:
        runner = self.runner
        if self.out_dir != self.work_dir:
            write_json(self.out_dir / SHARD_FILE, dict(fingerprint=self.fingerprint, selection=self.selection,
                                                       shard=list(self.shard), done=True, info=self.info,
                                                       indices=self.mine, run=self._run_json('shard done'), **mine))
        if runner.distributed:
            parts = dist.all_gather_object(mine)
            dist.barrier()
            if runner.rank == 0:
                merge_into(self.work_dir, [shard_dir(self.work_dir, (r, runner.world_size))
                                           for r in range(runner.world_size)])
                self._write_results(parts)
            dist.barrier()
            return self._read_result(combine_parts(parts))
        if runner.shard_arg is not None:
            return self._merge_if_complete(mine)
        merge_into(self.work_dir, [])  # sorted by index: the same file a merged sharded run has
        self._write_results([mine])
        return self._read_result(combine_parts([mine]))

    def _merge_if_complete(self, mine: dict) -> dict:
        n = self.shard[1]
        states = [read_shard_file(shard_dir(self.work_dir, (i, n))) for i in range(n)]
        done = [s for s in states if s.get('done') and s.get('fingerprint') == self.fingerprint
                and s.get('selection') == self.selection]
        own = dict(self.info, **mine, status='shard done', shard=list(self.shard))
        if len(done) < n:
            logger.info('shard %d/%d done; %d of %d shards finished. The last one to finish merges them, or run '
                        'python tools/merge_shards.py %s', self.shard[0], n, len(done), n, self.work_dir)
            return own
        try:
            lock = WorkDirLock(self.work_dir).acquire()
        except LockError:  # another shard is merging (or the dir is in use): it finishes the job
            logger.info('all shards done; another process holds %s and merges them', self.work_dir)
            return own
        try:
            return dict(merge_complete_shards(self.work_dir, merged_by=f'shard {self.shard[0]}/{n} (the last to finish)'),
                        device=str(self.runner.device))
        finally:
            lock.release()

    def _write_results(self, parts: list[dict]) -> None:
        """Rank 0 / the merging process: metrics over every selected sample, written once."""
        combined = combine_parts(parts)
        run_json = self._run_json(status='done', timing=combined['timing'], num_new=combined['num_new'],
                                  num_resumed=combined['num_resumed'],
                                  shards=[dict(shard=p.get('shard'), timing=p['timing']) for p in parts
                                          if p.get('shard')])
        finalize(self.work_dir, self.wanted, self.ev.metrics, self.info, parts, run_json)

    def _read_result(self, extra: dict) -> dict:
        out = json.loads((self.work_dir / 'metrics.json').read_text())
        return dict(out, **{k: v for k, v in extra.items() if k != 'method_stats'},
                    device=str(self.runner.device), versions=self.runner.run_info()['versions'])


def _recorded_fingerprint(directory: Path) -> str | None:
    try:
        return json.loads((directory / 'run.json').read_text()).get('fingerprint')
    except (OSError, ValueError):
        return None
