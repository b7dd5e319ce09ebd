"""``train_prompts``: few-shot prompt learning from a config (e.g. MaPLe prompts for a backbone, 16-shot).

Config keys: ``model`` (backbone, prompt_learner, optional ``prompt_checkpoint`` = the initialisation),
``train_data = dict(dataset, num_shots=16, batch_size=4, num_workers=4, short_classes='error')``,
``val_data = dict(dataset, max_samples=None, batch_size=64)`` (or ``None``), ``trainer = dict(type='PromptTrainer',
...)``, ``seed``, ``device``, ``work_dir``, ``log_level``.

Work dir: ``config.py``, ``log.txt``, ``train_log.jsonl`` (one line per epoch), ``fewshot_indices.json``,
``resume_state.safetensors`` (after every epoch) and the result ``prompt_learner.safetensors`` (the native prompt
checkpoint, loadable with ``model.prompt_checkpoint=<work_dir>/prompt_learner.safetensors``).

Unreadable images are skipped (see :class:`~promptsync.engine.PromptTrainer`): every ``train_log.jsonl`` line counts
them (``skipped``, ``val_skipped``, the first ``skipped_paths``) and the checkpoint's metadata records how many
distinct files could not be read over the whole run (``skipped_train_images``, ``skipped_val_images``) and the
first of them (``skipped_paths``).
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mmengine.config import Config

from promptsync import __version__
from promptsync.datasets.view_dataset import SKIPPED_LISTED
from promptsync.engine.fewshot import sample_few_shot
from promptsync.engine.state import load_state, save_state
from promptsync.models import build_model
from promptsync.models.prompt_learners.checkpoint import file_sha256, save_prompt_checkpoint
from promptsync.registry import DATASETS, TRAINERS
from promptsync.utils.logging import get_logger, setup_logging
from promptsync.utils.seeding import seed_everything

from .test import resolve_device, select_indices

logger = get_logger('train')
CHECKPOINT, STATE, TRAIN_LOG, FEWSHOT = ('prompt_learner.safetensors', 'resume_state.safetensors', 'train_log.jsonl',
                                         'fewshot_indices.json')
#: keys that change how a run executes but not what it learns (excluded from the fingerprint)
RUNTIME_ONLY_KEYS = ('work_dir', 'log_level', 'device', 'hooks', 'train_data.num_workers', 'val_data.num_workers',
                     'val_data.batch_size', 'trainer.num_workers', 'trainer.val_batch_size', 'trainer.log_interval')


@dataclass
class TrainResult:
    checkpoint: Path
    work_dir: Path
    model: Any            # the trained PromptedCLIP (learner in the saved state)
    trainer: Any
    summary: dict


def train_fingerprint(cfg: Config) -> str:
    """Hash of every config key that can change the learned prompts (+ the initial checkpoint's content)."""
    tree = json.loads(json.dumps(cfg.to_dict(), sort_keys=True, default=str))
    for dotted in RUNTIME_ONLY_KEYS:
        *parents, leaf = dotted.split('.')
        node = tree
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(leaf, None)
    init = (cfg.get('model') or {}).get('prompt_checkpoint')
    if init and Path(init).expanduser().is_file():
        tree['prompt_checkpoint_sha256'] = file_sha256(Path(init).expanduser())
    return hashlib.sha256(json.dumps(tree, sort_keys=True).encode()).hexdigest()[:16]


def _previous_state(work_dir: Path, fingerprint: str, resume: bool):
    """The resume state of this config in ``work_dir`` (None = start over); refuses another config's state."""
    path = work_dir / STATE
    if not path.exists():
        return None
    if not resume:
        for name in (STATE, CHECKPOINT, TRAIN_LOG):
            (work_dir / name).unlink(missing_ok=True)
        logger.info('--no-resume: discarded the previous training state in %s', work_dir)
        return None
    tensors, document = load_state(path)
    if document.get('fingerprint') != fingerprint:
        raise RuntimeError(
            f"{work_dir} holds the training state of a different config (fingerprint {document.get('fingerprint')}, "
            f'this config {fingerprint}; compare with {work_dir / "config.py"}). Use another --work-dir, or '
            '--no-resume to discard it and start over.')
    return tensors, document


def _batch_size(cfg: Config) -> int:
    data_bs, trainer_bs = cfg.train_data.get('batch_size'), cfg.trainer.get('batch_size')
    if data_bs is not None and trainer_bs is not None and int(data_bs) != int(trainer_bs):
        raise ValueError(f'train_data.batch_size={data_bs} and trainer.batch_size={trainer_bs} disagree; set one')
    return int(data_bs if data_bs is not None else trainer_bs if trainer_bs is not None else 4)


def fit_prompts(cfg: Config, resume: bool = True) -> TrainResult:
    """Train the prompt learner described by ``cfg`` (resuming a run of the same config in its work dir)."""
    missing = [k for k in ('model', 'train_data', 'trainer', 'work_dir') if not cfg.get(k)]
    if missing or not (cfg.get('train_data') or {}).get('dataset'):
        raise KeyError("a training config needs model, train_data=dict(dataset=..., num_shots=...), "
                       "trainer=dict(type='PromptTrainer', ...) and work_dir (tools/train.py sets it); "
                       f"missing: {missing or ['train_data.dataset']}")
    work_dir = Path(cfg.work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    setup_logging(cfg.get('log_level', 'INFO'), str(work_dir / 'log.txt'))
    fingerprint = train_fingerprint(cfg)
    batch_size = _batch_size(cfg)
    previous = _previous_state(work_dir, fingerprint, resume)
    cfg.dump(str(work_dir / 'config.py'))
    seed = int(cfg.get('seed', 0))
    device = resolve_device(cfg.get('device', 'auto'))

    train_cfg = dict(cfg.train_data)
    dataset = DATASETS.build(dict(train_cfg['dataset']))
    subset = sample_few_shot(dataset, train_cfg.get('num_shots'), seed, train_cfg.get('short_classes', 'error'))
    (work_dir / FEWSHOT).write_text(json.dumps(subset.to_json(dataset)) + '\n')
    logger.info('training set %s: %d of %d images (%s shots, %d classes)', getattr(dataset, 'name', '?'),
                len(subset.indices), len(dataset), subset.num_shots or 'all', dataset.num_classes)
    val_cfg = dict(cfg.get('val_data') or {})
    val_set = val_indices = None
    if val_cfg:
        val_set = DATASETS.build(dict(val_cfg['dataset']))
        if list(val_set.classnames) != list(dataset.classnames):
            raise ValueError(f'val_data has {val_set.num_classes} classes that differ from the training set\'s '
                             f'{dataset.num_classes} (names, in label order); validation needs the same label space')
        val_indices = select_indices(len(val_set), val_cfg.get('max_samples'), None, seed)

    seed_everything(seed)
    model = build_model(cfg.model, dataset.classnames, device)
    trainer = TRAINERS.build(dict(cfg.trainer), default_args=dict(
        model=model, seed=seed, batch_size=batch_size, num_workers=int(train_cfg.get('num_workers', 0)),
        val_batch_size=int(val_cfg.get('batch_size', 64))))
    log_path = work_dir / TRAIN_LOG
    if previous is not None:
        trainer.load_state_dict(*previous)
        logger.info('resuming from %s: %d of %d epochs done', work_dir / STATE, trainer.epoch, trainer.epochs)
    log_path.write_text(''.join(json.dumps(r) + '\n' for r in trainer.history))  # drops lines of an unsaved epoch

    def save_epoch(tr, record: dict) -> None:
        with open(log_path, 'a') as fh:
            fh.write(json.dumps(record) + '\n')
        tensors, document = tr.state_dict()
        save_state(work_dir / STATE, tensors, dict(document, fingerprint=fingerprint))

    summary = trainer.fit(dataset, subset.indices, val_set, val_indices, callbacks=[save_epoch])
    unreadable = summary['unreadable']
    unreadable_paths = sorted(unreadable['train']) + sorted(unreadable['val'])
    if unreadable_paths:
        logger.warning('%d training and %d validation images could not be read and were skipped (first: %s); '
                       'counted per epoch in %s', len(unreadable['train']), len(unreadable['val']),
                       unreadable_paths[0], log_path)
    init = model.prompt_checkpoint or {}
    backbone = model.backbone
    meta = dict(
        prompt_learner=type(model.prompt_learner).__name__,
        prompt_learner_cfg=json.dumps(dict(cfg.model.get('prompt_learner') or {}), default=str),
        backbone=backbone.model_name, pretrained=str(backbone.pretrained), precision=backbone.precision,
        dataset=getattr(dataset, 'name', type(dataset).__name__), dataset_root=str(getattr(dataset, 'root', '')),
        num_classes=dataset.num_classes, shots=str(subset.num_shots or 'all'), train_images=len(subset.indices),
        short_classes=json.dumps(subset.short_classes), seed=seed, epochs=summary['epochs'],
        final_model=summary['final_model'], selected_epoch=summary['selected_epoch'],
        best_epoch=summary['best_epoch'], best_val_acc=summary['best_val_acc'],
        val_dataset=getattr(val_set, 'name', 'none') if val_set is not None else 'none',
        val_images=len(val_indices or []), skipped_train_images=len(unreadable['train']),
        skipped_val_images=len(unreadable['val']),
        skipped_paths=json.dumps(unreadable_paths[:SKIPPED_LISTED]),
        trainer_cfg=json.dumps(dict(cfg.trainer), default=str),
        init_checkpoint=init.get('path', 'none (initial prompts)'), init_checkpoint_sha256=init.get('sha256', ''),
        fingerprint=fingerprint, promptsync=__version__)
    path = save_prompt_checkpoint(model.prompt_learner.state_dict(), work_dir / CHECKPOINT, meta)
    logger.info('wrote %s (epoch %s of %d, best val acc %s)', path, summary['selected_epoch'], summary['epochs'],
                summary['best_val_acc'])
    return TrainResult(path, work_dir, model, trainer, summary)


def train_prompts(cfg: Config, resume: bool = True) -> Path:
    """Train and return the path of ``<work_dir>/prompt_learner.safetensors``."""
    return fit_prompts(cfg, resume).checkpoint
