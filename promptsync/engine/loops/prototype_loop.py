"""``PrototypeLoop``: stream a proxy source set through the frozen, prompted vision encoder into a prototype bank.

Config: ``model`` (the method's backbone + prompt learner + ``prompt_checkpoint``), ``proxy_data`` (``dataset``,
``batch_size``, ``num_workers``, ``max_samples``, ``subset_seed``) and ``prototypes``::

    prototypes = dict(file='.../imagenet_train.safetensors', layers=(0, 1), per_class=True,
                      token_stats='per_token', save_every=200, dtype='float32', views=None, seed=0)

Statistics are accumulated per batch (no image kept in memory); every ``save_every`` batches the running state
goes to ``<file>.partial.safetensors`` (one per rank under a launcher), from which an interrupted run resumes.
Under a launcher each rank takes every N-th batch and the ranks' statistics are merged (Chan's parallel form) before
rank 0 writes the bank. The bank's metadata records its fingerprint and source (what a test run checks), the
images used and the unreadable ones (skipped, named, counted; not retried on resume, so a resumed bank equals an
uninterrupted one — fix the files and pass ``--no-resume`` to include them).

A bank at ``prototypes.file`` that was computed from another source is never overwritten silently: the run
refuses (``--no-resume`` replaces it). Suites skip the job when the bank is current (:func:`bank_is_current`).
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from mmengine.runner import BaseLoop
from torch.utils.data import DataLoader

from promptsync import __version__
from promptsync.datasets import ViewDataset
from promptsync.datasets.view_dataset import collate_views
from promptsync.errors import ConfigError, DataError, ProvenanceError
from promptsync.hooks import Progress
from promptsync.models import build_model
from promptsync.prototypes import BankAccumulator
from promptsync.prototypes.bank import TOKEN_STATS
from promptsync.registry import DATASETS, LOOPS
from promptsync.tta.views import build_views
from promptsync.utils.files import read_safetensors, read_safetensors_metadata, write_safetensors
from promptsync.utils.logging import get_logger
from promptsync.utils.seeding import seed_everything

from .. import dist
from ..provenance import fingerprint_and_files, source_summary
from ..shards import select_indices, shard_indices, write_json

logger = get_logger('prototypes')
DTYPES = {'float32': torch.float32, 'float16': torch.float16, 'bfloat16': torch.bfloat16}


def _config(cfg) -> dict:
    pcfg = dict(cfg.get('prototypes') or {})
    if pcfg.get('token_stats', 'per_token') not in TOKEN_STATS:
        raise ConfigError(f"prototypes.token_stats='{pcfg['token_stats']}' is not one of {TOKEN_STATS}",
                          where='prototypes.token_stats')
    if pcfg.get('dtype', 'float32') not in DTYPES:
        raise ConfigError(f"prototypes.dtype='{pcfg['dtype']}' is not one of {sorted(DTYPES)}", where='prototypes.dtype')
    return pcfg


def bank_fingerprint(path: str | Path) -> str | None:
    """The fingerprint a bank file records (None if there is no file)."""
    path = Path(path)
    return read_safetensors_metadata(path, 'prototype bank').get('fingerprint') if path.exists() else None


def bank_is_current(cfg) -> bool:
    """Whether ``prototypes.file`` holds the bank this config describes (nothing to compute)."""
    file = (cfg.get('prototypes') or {}).get('file')
    return bool(file) and bank_fingerprint(file) == fingerprint_and_files(cfg, 'prototypes')[0]


@LOOPS.register_module()
class PrototypeLoop(BaseLoop):
    def __init__(self, runner, dataloader=None):
        super().__init__(runner, dataloader)

    def _partial(self, out: Path) -> Path:
        r = self.runner
        tag = f'.rank{r.rank}of{r.world_size}' if r.distributed else ''
        return out.with_name(f'{out.name}.partial{tag}.safetensors')

    def _refuse_overwrite(self, out: Path, fp: str) -> None:
        """A bank of another source at ``out`` is never replaced without ``--no-resume``."""
        got = bank_fingerprint(out)
        if got is not None and got != fp and self.runner.resume:
            raise ProvenanceError(f'{out} holds a prototype bank of another configuration (fingerprint {got}, this '
                                  f'config {fp}); other configs may use it', where='prototypes.file',
                                  fix='set prototypes.file to a new path for this config, or pass --no-resume to '
                                      'replace it')

    def run(self) -> Path:
        runner, cfg = self.runner, self.runner.cfg
        pcfg = _config(cfg)
        out = Path(pcfg['file'])
        fp, files = runner.fingerprint, runner.files
        token_stats, per_class = pcfg.get('token_stats', 'per_token'), bool(pcfg.get('per_class', True))
        layers = tuple(int(x) for x in pcfg.get('layers', (0, 1)))
        data_cfg = dict(cfg.proxy_data)
        seed_everything(runner.seed)
        dataset = DATASETS.build(dict(data_cfg['dataset']))
        model = build_model(cfg.model, dataset.label_space, runner.device)
        backbone = model.backbone
        views = build_views(pcfg.get('views'), backbone.preprocess_cfg)
        bs = int(data_cfg.get('batch_size', 32))
        indices = select_indices(len(dataset), data_cfg.get('max_samples'), int(data_cfg.get('subset_seed') or 0))
        mine = shard_indices(indices, runner.shard, bs)
        state = BankAccumulator(dataset.num_classes if per_class else 1, layers, token_stats, runner.device)
        partial = self._partial(out)
        done, skipped = 0, []  # positions of ``mine`` consumed (read + unreadable); unreadable records
        if partial.exists():
            tensors, meta = read_safetensors(partial, 'partial prototype state', fix=f'delete {partial}')
            if runner.resume and meta.get('fingerprint') == fp:
                state.load(tensors)
                done, skipped = int(meta['processed']), json.loads(meta.get('skipped_records', '[]'))
                runner.ledger.add(skipped, 'proxy')
                logger.info('resuming prototypes from %s: %d of %d images done (%d of them unreadable, not retried)',
                            partial, done, len(mine), len(skipped))
            elif runner.resume:
                raise ProvenanceError(f'{partial} belongs to another configuration', where=str(partial),
                                      fix='delete it or pass --no-resume')
        self._refuse_overwrite(out, fp)
        loader = DataLoader(ViewDataset(dataset, views, int(pcfg.get('seed') or 0), mine[done:], skip_unreadable=True),
                            batch_size=bs, shuffle=False, num_workers=int(data_cfg.get('num_workers', 0)),
                            collate_fn=collate_views)
        save_every = int(pcfg.get('save_every', 200))
        runner.ledger.listed_in = f"the bank's metadata (skipped_paths) and {runner.work_dir / 'run.json'}"
        progress = Progress(total=len(mine), done=done, desc='prototypes')
        runner.progress['test'] = progress
        started = time.time()
        runner.hooks.call('before_test_epoch')
        with torch.no_grad():
            prompts = model.prompts()
            for step, batch in enumerate(loader, 1):
                runner.hooks.call('before_test_iter', batch_idx=step - 1, data_batch=batch)
                skipped += runner.ledger.add(batch['skipped'], 'proxy')
                n = len(batch['index'])
                if n:
                    images = batch['views'][:, 0].to(runner.device)
                    labels = batch['label'].to(runner.device) if per_class else torch.zeros(
                        n, dtype=torch.long, device=runner.device)
                    with backbone.taps('vision', layers) as taps:
                        feats = model.image_features(images, prompts)
                    state.update(taps.tokens(), feats, labels)
                done += n + len(batch['skipped'])
                progress.advance(n + len(batch['skipped']), **({'skipped': len(skipped)} if skipped else {}))
                runner.hooks.call('after_test_iter', batch_idx=step - 1, data_batch=batch, outputs=None)
                if step % save_every == 0 and not state.empty:
                    write_safetensors(state.tensors(), partial, dict(
                        fingerprint=fp, processed=str(done), skipped=str(len(skipped)),
                        skipped_paths=json.dumps([r['path'] for r in skipped[:10]]),
                        skipped_records=json.dumps(skipped)))
        runner.hooks.call('after_test_epoch', metrics=None)
        if runner.distributed:
            self._merge(state)
            skipped = [r for part in dist.all_gather_object(skipped) for r in part]
        if state.empty or int(state.visual_count.sum()) == 0:
            if skipped:
                raise DataError(f'none of the {len(skipped)} proxy images could be read (first: '
                                f"{skipped[0]['path']})", where='proxy_data.dataset.root',
                                fix='check proxy_data.dataset.root and the files')
            raise DataError('no image was processed: the proxy dataset is empty', where='proxy_data.dataset')
        if runner.rank == 0:
            self._write(state, dataset, model, pcfg, fp, files, out, skipped, time.time() - started, per_class)
        dist.barrier()
        partial.unlink(missing_ok=True)
        return out

    def _merge(self, state: BankAccumulator) -> None:
        shapes = next((s for s in dist.all_gather_object(state.shapes()) if s is not None), None)
        if shapes is None:
            return
        state.ensure_shapes({'tokens': {int(k): v for k, v in shapes['tokens'].items()}, 'width': shapes['width']})
        state.all_reduce(dist.all_reduce_sum)

    def _write(self, state, dataset, model, pcfg, fp, files, out, skipped, seconds, per_class) -> None:
        runner, backbone = self.runner, model.backbone
        read = int(state.visual_count.sum())
        space = dataset.label_space if per_class else type(dataset.label_space)(('all classes',), None)
        bank = state.to_bank(space, DTYPES[pcfg.get('dtype', 'float32')])
        missing = int((bank.counts == 0).sum())
        if missing:
            logger.warning('%d proxy classes have no image: their statistics are zeros (their count is 0)', missing)
        ckpt = model.prompt_checkpoint or {}
        meta: dict[str, Any] = dict(
            backbone=backbone.model_name, pretrained=str(backbone.pretrained), precision=backbone.precision,
            prompt_learner=type(model.prompt_learner).__name__,
            prompt_learner_cfg=json.dumps(dict(runner.cfg.model.get('prompt_learner') or {}), default=str),
            prompt_checkpoint=ckpt.get('path', 'none (initial prompts)'),
            prompt_checkpoint_sha256=ckpt.get('sha256', ''), tap_point='input',
            dataset=getattr(dataset, 'name', type(dataset).__name__), dataset_root=str(getattr(dataset, 'root', '')),
            images=str(read), skipped_images=str(len(skipped)),
            skipped_paths=json.dumps([r['path'] for r in skipped[:10]]), per_class=str(per_class),
            classes_without_images=str(missing), views=json.dumps(pcfg.get('views') or dict(type='OriginalView')),
            seed=str(int(pcfg.get('seed') or 0)), fingerprint=fp,
            source=json.dumps(source_summary(runner.cfg), sort_keys=True, default=str), promptsync=__version__,
            world_size=str(runner.world_size), seconds=f'{seconds:.1f}', created=time.strftime('%Y-%m-%dT%H:%M:%S'))
        bank.save(out, meta)
        write_json(runner.work_dir / 'run.json', dict(runner.run_info(), fingerprint=fp, files=files, bank=str(out),
                                                      images=read, skipped=skipped,
                                                      resources=[r.__dict__ for r in runner.resources]))
        logger.info('wrote %s (%d classes, layers %s, %s statistics, %d images)', out, bank.num_classes, bank.layers,
                    bank.token_stats, read)
        if skipped:
            logger.warning('%d proxy images could not be read and were skipped (first: %s); the statistics are over '
                           'the other %d (metadata: skipped_images, skipped_paths)', len(skipped), skipped[0]['path'],
                           read)
