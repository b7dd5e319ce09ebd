"""``PromptTrainLoop``: few-shot prompt learning, epoch by epoch, resumable at every epoch boundary.

Config: ``model`` (backbone, prompt_learner, optional ``prompt_checkpoint`` = the initialisation),
``train_data = dict(dataset, num_shots=16, batch_size=4, num_workers=4, short_classes='error')``,
``val_data = dict(dataset, max_samples=None, batch_size=64)`` (or ``None``), ``trainer = dict(type='PromptTrainer',
...)``, ``seed``, ``device``, ``work_dir``.

Work dir: ``config.py``, ``log.txt``, ``run.json``, ``train_log.jsonl`` (one line per epoch),
``fewshot_indices.json``, ``resume_state.safetensors`` (after every epoch) and the result
``prompt_learner.safetensors`` (the native prompt checkpoint: ``model.prompt_checkpoint=<work_dir>/...``).
The resume state belongs to one fingerprint (config + the contents of the files it names: initial prompts,
backbone weights); another config's state is refused. Under a launcher every rank trains on its slice of each
batch (:class:`~promptsync.training.PromptTrainer`); rank 0 writes the files.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmengine.runner import BaseLoop

from promptsync import __version__
from promptsync.datasets.fewshot import sample_few_shot
from promptsync.datasets.view_dataset import SKIPPED_LISTED
from promptsync.errors import ConfigError, ProvenanceError
from promptsync.hooks import Progress
from promptsync.models import build_model
from promptsync.models.prompt_learners.checkpoint import save_prompt_checkpoint
from promptsync.registry import DATASETS, LOOPS, TRAINERS
from promptsync.utils.logging import get_logger
from promptsync.utils.seeding import seed_everything
from promptsync.utils.state_file import load_state, save_state
from promptsync.visualization.safe import plot_safely
from promptsync.visualization.training_curves import training_curves

from .. import dist
from ..shards import select_indices, write_json

logger = get_logger('train')
CHECKPOINT, STATE, TRAIN_LOG, FEWSHOT = ('prompt_learner.safetensors', 'resume_state.safetensors', 'train_log.jsonl',
                                         'fewshot_indices.json')


@dataclass
class TrainResult:
    checkpoint: Path
    work_dir: Path
    model: Any            # the trained PromptedCLIP (learner in the saved state)
    trainer: Any
    summary: dict


def _batch_size(cfg) -> int:
    data_bs, trainer_bs = cfg.train_data.get('batch_size'), cfg.trainer.get('batch_size')
    if data_bs is not None and trainer_bs is not None and int(data_bs) != int(trainer_bs):
        raise ConfigError(f'train_data.batch_size={data_bs} and trainer.batch_size={trainer_bs} disagree; set one',
                          where='train_data.batch_size / trainer.batch_size')
    return int(data_bs if data_bs is not None else trainer_bs if trainer_bs is not None else 4)


@LOOPS.register_module()
class PromptTrainLoop(BaseLoop):
    def __init__(self, runner, dataloader=None):
        super().__init__(runner, dataloader)

    def _previous_state(self, fp: str):
        """The resume state of this config in the work dir (None = start over); refuses another config's state."""
        runner, work_dir = self.runner, self.runner.work_dir
        path = work_dir / STATE
        if not runner.resume:
            if runner.rank == 0 and path.exists():
                for name in (STATE, CHECKPOINT, TRAIN_LOG):
                    (work_dir / name).unlink(missing_ok=True)
                logger.info('--no-resume: discarded the previous training state in %s', work_dir)
            dist.barrier()
            return None
        if not path.exists():
            return None
        tensors, document = load_state(path)
        if document.get('fingerprint') != fp:
            raise ProvenanceError(
                f"{work_dir} holds the training state of a different config (fingerprint {document.get('fingerprint')}"
                f', this config {fp}; compare with {work_dir / "config.py"}, and the file hashes in run.json)',
                where=str(path), fix='use another --work-dir, or --no-resume to discard it and start over')
        return tensors, document

    def run(self) -> TrainResult:
        runner, cfg = self.runner, self.runner.cfg
        work_dir, main = Path(runner.work_dir), runner.rank == 0
        fp, files = runner.fingerprint, runner.files
        batch_size = _batch_size(cfg)
        previous = self._previous_state(fp)
        train_cfg = dict(cfg.train_data)
        dataset = DATASETS.build(dict(train_cfg['dataset']))
        subset = sample_few_shot(dataset, train_cfg.get('num_shots'), runner.seed,
                                 train_cfg.get('short_classes', 'error'))
        if main:
            (work_dir / FEWSHOT).write_text(json.dumps(subset.to_json(dataset)) + '\n')
        logger.info('training set %s: %d of %d images (%s shots, %d classes)', getattr(dataset, 'name', '?'),
                    len(subset.indices), len(dataset), subset.num_shots or 'all', dataset.num_classes)
        val_cfg = dict(cfg.get('val_data') or {})
        val_set = val_indices = None
        if val_cfg:
            val_set = DATASETS.build(dict(val_cfg['dataset']))
            if list(val_set.classnames) != list(dataset.classnames):
                raise ConfigError(f'val_data has {val_set.num_classes} classes that differ from the training set\'s '
                                  f'{dataset.num_classes} (names, in label order); validation needs the same label '
                                  'space', where='val_data.dataset')
            val_indices = select_indices(len(val_set), val_cfg.get('max_samples'),
                                         int(val_cfg.get('subset_seed') or 0))
        seed_everything(runner.seed)  # the initial prompts are drawn right after seeding, as in one-off use
        model = build_model(cfg.model, dataset.label_space, runner.device)
        trainer = TRAINERS.build(dict(cfg.trainer), default_args=dict(
            model=model, seed=runner.seed, batch_size=batch_size, num_workers=int(train_cfg.get('num_workers', 0)),
            val_batch_size=int(val_cfg.get('batch_size', 64)), ledger=runner.ledger))
        runner.ledger.listed_in = str(work_dir / TRAIN_LOG)
        log_path = work_dir / TRAIN_LOG
        if previous is not None:
            trainer.load_state_dict(*previous)
            logger.info('resuming from %s: %d of %d epochs done', work_dir / STATE, trainer.epoch, trainer.epochs)
        if main:
            log_path.write_text(''.join(json.dumps(r) + '\n' for r in trainer.history))  # drops an unsaved epoch's
            write_json(work_dir / 'run.json', dict(runner.run_info(), fingerprint=fp, files=files, status='running',
                                                   resources=[r.__dict__ for r in runner.resources]))
        self._train(trainer, dataset, subset.indices, val_set, val_indices, fp, log_path)
        selected = trainer.select_final()
        summary = dict(epochs=trainer.epoch, final_model=trainer.final_model, selected_epoch=selected,
                       best_epoch=trainer.best_epoch, best_val_acc=trainer.best_val_acc,
                       history=list(trainer.history), unreadable=trainer.unreadable)
        path = work_dir / CHECKPOINT
        if main:
            path = self._save(model, trainer, dataset, subset, val_set, val_indices, summary, fp, files)
            plot_safely(training_curves, log_path, path=work_dir / 'train_curves.png',
                        selected_epoch=summary['selected_epoch'], title=f'training: {work_dir.name}')
        dist.barrier()
        return TrainResult(path, work_dir, model, trainer, summary)

    def _train(self, trainer, dataset, indices, val_set, val_indices, fp, log_path) -> None:
        runner, hooks = self.runner, self.runner.hooks

        def on_train_iter(it, batch, stats):
            runner.progress['train'].advance(len(batch['index']) + len(batch['skipped']), loss=f"{stats['loss']:.4f}")
            hooks.call('after_train_iter', batch_idx=it - 1, data_batch=batch, outputs=stats)

        def on_val_iter(it, batch):
            runner.progress['val'].advance(len(batch['index']) + len(batch['skipped']))
            hooks.call('after_val_iter', batch_idx=it - 1, data_batch=batch, outputs=None)
        trainer.on_train_iter, trainer.on_val_iter = on_train_iter, on_val_iter
        trainer.before_train_iter = lambda it, batch: hooks.call('before_train_iter', batch_idx=it - 1, data_batch=batch)
        trainer.before_val_iter = lambda it, batch: hooks.call('before_val_iter', batch_idx=it - 1, data_batch=batch)
        hooks.call('before_train')
        per_epoch = sum(len(s) for s in trainer.epoch_steps(len(indices)))
        for epoch in range(trainer.epoch, trainer.epochs):
            started = time.time()
            lr = trainer.optimizer.param_groups[0]['lr']
            runner.progress['train'] = Progress(total=per_epoch, desc=f'epoch {epoch + 1}/{trainer.epochs}')
            hooks.call('before_train_epoch')
            stats = trainer.train_epoch(dataset, indices, epoch)
            val_acc, val_skipped = None, []
            if val_set is not None:
                share = len(val_indices[runner.rank::runner.world_size])
                runner.progress['val'] = Progress(total=share, desc=f'val {epoch + 1}/{trainer.epochs}')
                hooks.call('before_val')
                hooks.call('before_val_epoch')
                val_acc = trainer.evaluate(val_set, val_indices)
                val_skipped = trainer.last_val_skipped
                hooks.call('after_val_epoch', metrics=dict(top1=val_acc))
                hooks.call('after_val')
            trainer.end_epoch(val_acc)
            unreadable = stats['skipped'] + val_skipped
            record = dict(epoch=trainer.epoch, loss=stats['loss'], train_acc=stats['train_acc'], val_acc=val_acc,
                          lr=lr, images=stats['images'], skipped=len(stats['skipped']),
                          val_skipped=len(val_skipped) if val_set is not None else None,
                          skipped_paths=[r['path'] for r in unreadable[:SKIPPED_LISTED]],
                          seconds=round(time.time() - started, 3))
            trainer.history.append(record)
            if unreadable:
                logger.warning('epoch [%d/%d]: skipped %d unreadable training and %d validation images (first: %s: '
                               '%s); the loss and accuracies are over the readable ones', trainer.epoch,
                               trainer.epochs, len(stats['skipped']), len(val_skipped), unreadable[0]['path'],
                               unreadable[0]['error'])
            logger.info('epoch [%d/%d] loss %.4f train acc %.2f val acc %s lr %.3e (%.1f s)', trainer.epoch,
                        trainer.epochs, record['loss'], record['train_acc'],
                        'n/a' if val_acc is None else f'{val_acc:.2f}', lr, record['seconds'])
            if runner.rank == 0:
                with open(log_path, 'a') as fh:
                    fh.write(json.dumps(record) + '\n')
                tensors, document = trainer.state_dict()
                document = dict(document, fingerprint=fp)
                hooks.call('before_save_checkpoint', checkpoint=document)
                save_state(runner.work_dir / STATE, tensors, document)
            hooks.call('after_train_epoch')
        hooks.call('after_train')

    def _save(self, model, trainer, dataset, subset, val_set, val_indices, summary, fp, files) -> Path:
        cfg, work_dir = self.runner.cfg, Path(self.runner.work_dir)
        unreadable = summary['unreadable']
        paths = sorted(unreadable['train']) + sorted(unreadable['val'])
        if paths:
            logger.warning('%d training and %d validation images could not be read and were skipped (first: %s); '
                           'counted per epoch in %s', len(unreadable['train']), len(unreadable['val']), paths[0],
                           work_dir / TRAIN_LOG)
        init = model.prompt_checkpoint or {}
        backbone = model.backbone
        meta = dict(
            prompt_learner=type(model.prompt_learner).__name__,
            prompt_learner_cfg=json.dumps(dict(cfg.model.get('prompt_learner') or {}), default=str),
            backbone=backbone.model_name, pretrained=str(backbone.pretrained), precision=backbone.precision,
            dataset=getattr(dataset, 'name', type(dataset).__name__), dataset_root=str(getattr(dataset, 'root', '')),
            num_classes=dataset.num_classes, shots=str(subset.num_shots or 'all'), train_images=len(subset.indices),
            short_classes=json.dumps(subset.short_classes), seed=self.runner.seed, epochs=summary['epochs'],
            final_model=summary['final_model'], selected_epoch=summary['selected_epoch'],
            best_epoch=summary['best_epoch'], best_val_acc=summary['best_val_acc'],
            val_dataset=getattr(val_set, 'name', 'none') if val_set is not None else 'none',
            val_images=len(val_indices or []), skipped_train_images=len(unreadable['train']),
            skipped_val_images=len(unreadable['val']), skipped_paths=json.dumps(paths[:SKIPPED_LISTED]),
            trainer_cfg=json.dumps(dict(cfg.trainer), default=str),
            init_checkpoint=init.get('path', 'none (initial prompts)'), init_checkpoint_sha256=init.get('sha256', ''),
            fingerprint=fp, world_size=self.runner.world_size, promptsync=__version__)
        path = save_prompt_checkpoint(model.prompt_learner.state_dict(), work_dir / CHECKPOINT, meta)
        write_json(work_dir / 'run.json', dict(self.runner.run_info(), fingerprint=fp, files=files, status='done',
                                               checkpoint=str(path), selected_epoch=summary['selected_epoch'],
                                               resources=[r.__dict__ for r in self.runner.resources]))
        logger.info('wrote %s (epoch %s of %d, best val acc %s)', path, summary['selected_epoch'], summary['epochs'],
                    summary['best_val_acc'])
        return path
