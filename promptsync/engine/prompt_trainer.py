"""``PromptTrainer``: few-shot supervised prompt learning (CoOp / MaPLe) on a frozen CLIP backbone.

One step: ``prompts = learner()``, logits of ``PromptedCLIP`` (image features with the visual prompts, text
features of every class), cross-entropy with the labels, one optimizer step on the *learner's* parameters only.
After every epoch the scheduler steps (warm-up + cosine, :mod:`.schedule`) and, when a validation split is
given, top-1 accuracy is measured on its original views; the best-validation learner state is kept.

Determinism: the data order of epoch ``e`` is a permutation drawn from a ``torch.Generator`` seeded with
``(seed, 3, e)``; the crop/flip of dataset image ``i`` in epoch ``e`` comes from a stream derived from
``(seed, 2, e)`` and ``i``. Neither depends on the number of workers or on what ran before, so a run resumed
at an epoch boundary continues exactly as an uninterrupted one.

Unreadable images (corrupt, truncated, empty, not an image) are skipped in training and validation batches,
never silently: every epoch's record counts them (``skipped``, ``val_skipped``, the first ``skipped_paths``) and a
log warning names the first of the epoch; ``unreadable`` collects every such file (saved with the resume state).
They are attempted again each epoch, so the data order never depends on them.
"""
from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from promptsync.datasets import ViewDataset
from promptsync.datasets.view_dataset import SKIPPED_LISTED, collate_views
from promptsync.registry import OPTIMIZERS, TRAINERS, TRANSFORMS
from promptsync.utils.logging import get_logger
from promptsync.utils.seeding import derive_seed

from .schedule import WarmupCosineLR
from .state import flatten_optimizer, prefixed, unflatten_optimizer

logger = get_logger('train')
VIEW_STREAM, ORDER_STREAM = 2, 3
FINAL_MODELS = ('best_val', 'last')
MAPLE_SGD = dict(type='SGD', lr=0.0035, momentum=0.9, weight_decay=5e-4)


@TRAINERS.register_module()
class PromptTrainer:
    """Args:
        model: a ``PromptedCLIP`` whose backbone is frozen (checked) and whose learner has parameters.
        epochs: training epochs.
        optimizer: an ``OPTIMIZERS`` config without ``params`` (default: MaPLe's SGD, lr 0.0035, momentum 0.9,
            weight decay 5e-4).
        warmup_epochs, warmup_lr: constant warm-up before the cosine (MaPLe: 1 epoch at 1e-5; 0 = none).
        min_lr: the cosine's floor (Dassl: 0).
        batch_size, num_workers: training loader; ``drop_last`` drops a last incomplete batch when the set holds
            at least one full batch (Dassl's behaviour).
        val_batch_size: validation loader batch size (does not change results).
        train_view: a ``TRANSFORMS`` config of the training augmentation (default ``TrainView``: random resized
            crop + flip); size, mean, std and interpolation default to the backbone's preprocessing.
        final_model: ``'best_val'`` keeps the learner state of the best validation epoch (earliest on ties; the last
            epoch when there is no validation split), ``'last'`` the state after the last epoch (MaPLe/Dassl).
        grad_scaler: ``GradScaler`` arguments; the scaler is on only under fp16 autocast (``precision='amp'`` on CUDA).
        log_interval: log the running loss every this many iterations (0 = never).
        seed: the run seed (data order and augmentation derive from it).
    """

    def __init__(self, model, epochs: int = 5, optimizer: Mapping[str, Any] | None = None, warmup_epochs: int = 1,
                 warmup_lr: float = 1e-5, min_lr: float = 0.0, batch_size: int = 4, num_workers: int = 0,
                 drop_last: bool = True, val_batch_size: int = 64, train_view: Mapping[str, Any] | None = None,
                 final_model: str = 'best_val', grad_scaler: Mapping[str, Any] | None = None,
                 log_interval: int = 20, seed: int = 0):
        trainable = [n for n, p in model.backbone.named_parameters() if p.requires_grad]
        if trainable:
            raise RuntimeError(f'the backbone must stay frozen, but {len(trainable)} of its parameters require '
                               f'grad (first: {trainable[:3]}); PromptTrainer trains only the prompt learner')
        self.params = [p for p in model.prompt_learner.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError(f'{type(model.prompt_learner).__name__} has no learnable parameters; train a CoOp or '
                             'MaPLe prompt learner (model.prompt_learner.type)')
        if final_model not in FINAL_MODELS:
            raise ValueError(f"trainer.final_model='{final_model}' is not one of {FINAL_MODELS}")
        if batch_size < 1:
            raise ValueError(f'batch_size must be >= 1, got {batch_size}')
        self.model, self.learner = model, model.prompt_learner
        self.epochs, self.batch_size, self.num_workers = int(epochs), int(batch_size), int(num_workers)
        self.drop_last, self.val_batch_size, self.final_model = drop_last, int(val_batch_size), final_model
        self.log_interval, self.seed = int(log_interval), int(seed)
        self.device = model.backbone.device
        self.optimizer = OPTIMIZERS.build(dict(optimizer or MAPLE_SGD), default_args=dict(params=self.params))
        self.scheduler = WarmupCosineLR(self.optimizer, self.epochs, warmup_epochs, warmup_lr, min_lr)
        fp16 = model.backbone.precision == 'amp' and self.device.type == 'cuda'
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=fp16, **dict(grad_scaler or {}))
        pp = model.backbone.preprocess_cfg
        view_args = dict(image_size=pp['size'], mean=pp['mean'], std=pp['std'], interpolation=pp['interpolation'])
        self.train_view = TRANSFORMS.build(dict(train_view or dict(type='TrainView')), default_args=view_args)
        self.val_view = TRANSFORMS.build(dict(type='OriginalView'), default_args=view_args)
        self.epoch = 0                                   # epochs completed
        self.history: list[dict[str, Any]] = []
        self.best_epoch: int | None = None
        self.best_val_acc: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.selected_epoch: int | None = None
        #: unreadable files met so far, per split: path -> error
        self.unreadable: dict[str, dict[str, str]] = {'train': {}, 'val': {}}
        self.last_val_skipped: list[dict] = []           # unreadable images of the last evaluate()

    # ------------------------------------------------------------------ one step / one epoch
    def train_step(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, int]:
        """One optimizer step on a batch; returns (mean loss, number of correct predictions)."""
        self.model.train()
        with torch.enable_grad():
            prompts = self.model.prompts()
            logits = self.model.logits(self.model.image_features(images, prompts), self.model.text_features(prompts))
            loss = F.cross_entropy(logits, labels)
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        return float(loss.detach()), int((logits.detach().argmax(dim=1) == labels).sum())

    def epoch_order(self, indices: Sequence[int], epoch: int) -> list[int]:
        """The data order of ``epoch`` (a seeded permutation of ``indices``)."""
        gen = torch.Generator().manual_seed(derive_seed(self.seed, ORDER_STREAM, epoch))
        return [indices[i] for i in torch.randperm(len(indices), generator=gen).tolist()]

    def train_epoch(self, dataset, indices: Sequence[int], epoch: int) -> dict[str, float]:
        order = self.epoch_order(indices, epoch)
        views = ViewDataset(dataset, self.train_view, derive_seed(self.seed, VIEW_STREAM, epoch), order,
                            skip_unreadable=True)
        loader = DataLoader(views, batch_size=self.batch_size, shuffle=False, num_workers=self.num_workers,
                            drop_last=self.drop_last and len(order) >= self.batch_size,
                            pin_memory=self.device.type == 'cuda', collate_fn=collate_views)
        loss_sum, correct, seen = 0.0, 0, 0
        skipped: list[dict] = []
        for it, batch in enumerate(loader, 1):
            skipped += self._note_unreadable('train', batch['skipped'])
            if not len(batch['index']):
                continue
            images = batch['views'][:, 0].to(self.device, non_blocking=True)
            labels = batch['label'].to(self.device)
            loss, right = self.train_step(images, labels)
            loss_sum, correct, seen = loss_sum + loss * len(labels), correct + right, seen + len(labels)
            if self.log_interval and it % self.log_interval == 0:
                logger.info('epoch [%d/%d] iter [%d/%d] loss %.4f acc %.2f lr %.3e', epoch + 1, self.epochs, it,
                            len(loader), loss_sum / seen, 100.0 * correct / seen, self.optimizer.param_groups[0]['lr'])
        if not seen:
            if skipped:
                raise RuntimeError(f'none of the {len(skipped)} training images of epoch {epoch + 1} could be read '
                                   f"(first: {skipped[0]['path']}: {skipped[0]['error']}); check the files")
            raise RuntimeError('the training set is empty')
        return dict(loss=loss_sum / seen, train_acc=100.0 * correct / seen, images=seen, skipped=skipped)

    @torch.no_grad()
    def evaluate(self, dataset, indices: Sequence[int]) -> float:
        """Top-1 accuracy (%) of the current prompts on the original views of the readable images of ``indices``.

        The unreadable ones are left in ``self.last_val_skipped`` (``dict(index, path, error)`` each).
        """
        self.model.eval()
        prompts = self.model.prompts()
        text = self.model.text_features(prompts)
        loader = DataLoader(ViewDataset(dataset, self.val_view, self.seed, indices, skip_unreadable=True),
                            batch_size=self.val_batch_size, shuffle=False, num_workers=self.num_workers,
                            collate_fn=collate_views)
        correct = total = 0
        self.last_val_skipped = []
        for batch in loader:
            self.last_val_skipped += self._note_unreadable('val', batch['skipped'])
            if not len(batch['index']):
                continue
            logits = self.model.logits(self.model.image_features(batch['views'][:, 0].to(self.device), prompts), text)
            correct += int((logits.argmax(dim=1).cpu() == batch['label']).sum())
            total += len(batch['label'])
        if not total and self.last_val_skipped:
            first = self.last_val_skipped[0]
            raise RuntimeError(f'none of the {len(self.last_val_skipped)} validation images could be read (first: '
                               f"{first['path']}: {first['error']}); check val_data or set val_data=None")
        return 100.0 * correct / max(total, 1)

    def _note_unreadable(self, split: str, records: list[dict]) -> list[dict]:
        """Remember the unreadable files of a batch; returns ``records``."""
        for rec in records:
            self.unreadable[split].setdefault(rec['path'], rec['error'])
        return list(records)

    # ------------------------------------------------------------------ the run
    def fit(self, train_set, train_indices: Sequence[int], val_set=None, val_indices: Sequence[int] | None = None,
            callbacks: Sequence[Callable[['PromptTrainer', dict], None]] = ()) -> dict[str, Any]:
        """Train from epoch ``self.epoch`` to ``epochs``; ``callbacks(trainer, record)`` run after every epoch.

        Leaves the learner in the ``final_model`` state and returns a summary.
        """
        if val_set is not None and val_indices is None:
            val_indices = list(range(len(val_set)))
        for epoch in range(self.epoch, self.epochs):
            started = time.time()
            lr = self.optimizer.param_groups[0]['lr']
            stats = self.train_epoch(train_set, train_indices, epoch)
            val_acc = self.evaluate(val_set, val_indices) if val_set is not None else None
            val_skipped = self.last_val_skipped if val_set is not None else []
            self.scheduler.step()
            self.epoch = epoch + 1
            if val_acc is not None and (self.best_val_acc is None or val_acc > self.best_val_acc):
                self.best_epoch, self.best_val_acc, self.best_state = self.epoch, val_acc, self.learner.snapshot()
            unreadable = stats['skipped'] + val_skipped
            record = dict(epoch=self.epoch, loss=stats['loss'], train_acc=stats['train_acc'], val_acc=val_acc, lr=lr,
                          images=stats['images'], skipped=len(stats['skipped']),
                          val_skipped=len(val_skipped) if val_set is not None else None,
                          skipped_paths=[r['path'] for r in unreadable[:SKIPPED_LISTED]],
                          seconds=round(time.time() - started, 3))
            self.history.append(record)
            if unreadable:
                logger.warning('epoch [%d/%d]: skipped %d unreadable training and %d validation images (first: %s: '
                               '%s); the loss and accuracies are over the readable ones', self.epoch, self.epochs,
                               len(stats['skipped']), len(val_skipped), unreadable[0]['path'], unreadable[0]['error'])
            logger.info('epoch [%d/%d] loss %.4f train acc %.2f val acc %s lr %.3e (%.1f s)', self.epoch, self.epochs,
                        record['loss'], record['train_acc'], 'n/a' if val_acc is None else f'{val_acc:.2f}', lr,
                        record['seconds'])
            for callback in callbacks:
                callback(self, record)
        if self.final_model == 'best_val' and self.best_state is not None:
            self.learner.restore(self.best_state)
            self.selected_epoch = self.best_epoch
        else:
            self.selected_epoch = self.epoch
        return dict(epochs=self.epoch, final_model=self.final_model, selected_epoch=self.selected_epoch,
                    best_epoch=self.best_epoch, best_val_acc=self.best_val_acc, history=list(self.history),
                    unreadable={k: dict(v) for k, v in self.unreadable.items()})

    # ------------------------------------------------------------------ resume state (tensors + JSON, no pickle)
    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f'learner.{k}': v for k, v in self.learner.snapshot().items()}
        if self.best_state is not None:
            tensors.update({f'best.{k}': v for k, v in self.best_state.items()})
        opt_tensors, opt_rest = flatten_optimizer(self.optimizer.state_dict())
        tensors.update(opt_tensors)
        document = dict(epoch=self.epoch, epochs=self.epochs, optimizer=opt_rest, scheduler=self.scheduler.state_dict(),
                        scaler=self.scaler.state_dict(), history=self.history, best_epoch=self.best_epoch,
                        best_val_acc=self.best_val_acc, unreadable=self.unreadable)
        return tensors, document

    def load_state_dict(self, tensors: Mapping[str, torch.Tensor], document: Mapping[str, Any]) -> None:
        if document['epochs'] != self.epochs:
            raise ValueError(f"the saved state is of a {document['epochs']}-epoch run, this trainer runs {self.epochs}")
        self.learner.restore(prefixed(tensors, 'learner'))
        self.best_state = prefixed(tensors, 'best') or None
        self.optimizer.load_state_dict(unflatten_optimizer(tensors, document['optimizer']))
        self.scheduler.load_state_dict(dict(document['scheduler']))
        if document['scaler'] and self.scaler.is_enabled():
            self.scaler.load_state_dict(dict(document['scaler']))
        self.epoch, self.history = int(document['epoch']), [dict(r) for r in document['history']]
        self.best_epoch, self.best_val_acc = document['best_epoch'], document['best_val_acc']
        saved = document.get('unreadable') or {}
        self.unreadable = {split: dict(saved.get(split) or {}) for split in ('train', 'val')}
