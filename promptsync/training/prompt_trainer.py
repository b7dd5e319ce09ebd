"""``PromptTrainer``: few-shot supervised prompt learning (CoOp / CoCoOp / MaPLe) on a frozen CLIP backbone.

One step: the logits of ``PromptedCLIP`` (``prompts = learner()``, image features with the visual prompts, text
features of every class; for an image-conditioned learner, CoCoOp, the frozen encoder's image features condition
each image's prompts, so a batch of ``B`` costs ``B * C`` text sequences), cross-entropy with the labels, one
optimizer step on the *learner's* parameters only. The trainer holds the optimizer, the per-epoch schedule
(warm-up + cosine, :mod:`.schedule`), the grad scaler, the best-validation state and the history; the epochs
themselves are run by the engine's :class:`~promptsync.engine.loops.PromptTrainLoop` (hooks, validation, resume
state, checkpoint).

Determinism: the data order of epoch ``e`` is a permutation drawn from a ``torch.Generator`` seeded with
``(seed, 3, e)``; the crop/flip of dataset image ``i`` in epoch ``e`` comes from a stream derived from
``(seed, 2, e)`` and ``i``. Neither depends on the number of workers or on what ran before, so a run resumed
at an epoch boundary continues exactly as an uninterrupted one.

Data parallel (several processes, ``torchrun``): every rank forms the same global batches and takes its slice of
each; the loss of a slice is its cross-entropy *sum* divided by the global number of images, and after the
backward pass the gradients are summed over ranks (an all-reduce), so every rank takes the same step a single
process would take on the whole batch (up to float summation order) and the learners stay identical. With one
process the step is exactly the single-process one (mean cross-entropy, no reduction).

A non-finite loss stops training at once (:class:`~promptsync.errors.NonFiniteError`), before the step that would
spread it into the prompts; no checkpoint is written from it.

Unreadable images (corrupt, truncated, empty, not an image) are skipped in training and validation batches,
never silently: every epoch's record counts them (``skipped``, ``val_skipped``, the first ``skipped_paths``) and
the run's :class:`~promptsync.datasets.unreadable.UnreadableLedger` keeps every such file (saved with the resume
state). They are attempted again each epoch, so the data order never depends on them.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from mmengine import dist as mmdist
from torch.utils.data import DataLoader

from promptsync.datasets import ViewDataset
from promptsync.datasets.unreadable import UnreadableLedger
from promptsync.datasets.view_dataset import collate_views
from promptsync.errors import ConfigError, NonFiniteError
from promptsync.registry import OPTIMIZERS, TRAINERS
from promptsync.tta.views import build_views
from promptsync.utils.logging import get_logger
from promptsync.utils.seeding import derive_seed
from promptsync.utils.state_file import flatten_optimizer, prefixed, unflatten_optimizer

from .schedule import WarmupCosineLR

logger = get_logger('train')
VIEW_STREAM, ORDER_STREAM = 2, 3
FINAL_MODELS = ('best_val', 'last')
MAPLE_SGD = dict(type='SGD', lr=0.0035, momentum=0.9, weight_decay=5e-4)


def _sum(*values: float) -> list[float]:
    """Sum numbers over ranks (unchanged in one process)."""
    t = torch.tensor(values, dtype=torch.float64)
    if mmdist.is_distributed():
        mmdist.all_reduce(t, op='sum')
    return t.tolist()


def _gather(records: list[dict]) -> list[dict]:
    if not mmdist.is_distributed():
        return records
    return [r for part in mmdist.all_gather_object(records) for r in part]


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
                 log_interval: int = 20, seed: int = 0, ledger: UnreadableLedger | None = None):
        trainable = [n for n, p in model.backbone.named_parameters() if p.requires_grad]
        if trainable:
            raise RuntimeError(f'the backbone must stay frozen, but {len(trainable)} of its parameters require '
                               f'grad (first: {trainable[:3]}); PromptTrainer trains only the prompt learner')
        self.params = [p for p in model.prompt_learner.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError(f'{type(model.prompt_learner).__name__} has no learnable parameters; train a CoOp or '
                             'MaPLe prompt learner (model.prompt_learner.type)')
        if final_model not in FINAL_MODELS:
            raise ConfigError(f"trainer.final_model='{final_model}' is not one of {FINAL_MODELS}", where='trainer.final_model')
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
        self.train_view = build_views(train_view, pp, default='TrainView')
        self.val_view = build_views(None, pp)
        self.epoch = 0                                   # epochs completed
        self.history: list[dict[str, Any]] = []
        self.best_epoch: int | None = None
        self.best_val_acc: float | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.selected_epoch: int | None = None
        #: every unreadable file met so far, per split ('train', 'val'); the Runner passes the run's ledger
        self.ledger = ledger if ledger is not None else UnreadableLedger('train_log.jsonl')
        self.last_val_skipped: list[dict] = []           # unreadable images of the last evaluate()
        #: per-iteration callbacks the loop sets (progress, hooks): before a step (iteration, batch), after it
        #: (iteration, batch, stats); before / after a validation batch (iteration, batch)
        self.before_train_iter: Callable[[int, dict], None] | None = None
        self.on_train_iter: Callable[[int, dict, dict], None] | None = None
        self.before_val_iter: Callable[[int, dict], None] | None = None
        self.on_val_iter: Callable[[int, dict], None] | None = None
        self._where = ''

    # ------------------------------------------------------------------ one step / one epoch
    def _check_finite(self, loss: torch.Tensor, where: str) -> None:
        bad = float(not bool(torch.isfinite(loss.detach()).all()))
        if _sum(bad)[0]:
            raise NonFiniteError(f'the training loss became non-finite ({float(loss.detach()):.4g} here) {where}',
                                 where='the prompt learner is left at the last finished epoch; nothing was saved '
                                       'from this step',
                                 fix='lower trainer.optimizer.lr or use model.backbone.precision=fp32 (fp16 '
                                     'overflows); a changed config starts in a new --work-dir or with --no-resume')

    def _backward_and_step(self, loss: torch.Tensor | None) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        if loss is not None:
            self.scaler.scale(loss).backward()
        if mmdist.is_distributed():
            for p in self.params:
                if p.grad is None:
                    p.grad = torch.zeros_like(p)
                mmdist.all_reduce(p.grad, op='sum')
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def train_step(self, images: torch.Tensor, labels: torch.Tensor,
                   global_count: int | None = None) -> tuple[float, int]:
        """One optimizer step on a batch; returns (mean loss of this batch, number of correct predictions).

        ``global_count``: the images of this step over all ranks (data parallel); ``None`` = one process.
        """
        self.model.train()
        if global_count is None:
            with torch.enable_grad():
                logits = self.model(images)
                loss = F.cross_entropy(logits, labels)
            self._check_finite(loss, self._where)
            self._backward_and_step(loss)
            return float(loss.detach()), int((logits.detach().argmax(dim=1) == labels).sum())
        if not len(labels):  # this rank's slice is empty (unreadable images): it still joins the reduction
            self._check_finite(torch.zeros(()), self._where)
            self._backward_and_step(None)
            return 0.0, 0
        with torch.enable_grad():
            logits = self.model(images)
            total = F.cross_entropy(logits, labels, reduction='sum')
            loss = total / global_count
        self._check_finite(loss, self._where)
        self._backward_and_step(loss)
        return float(total.detach()) / len(labels), int((logits.detach().argmax(dim=1) == labels).sum())

    def epoch_order(self, indices: Sequence[int], epoch: int) -> list[int]:
        """The data order of ``epoch`` (a seeded permutation of ``indices``)."""
        gen = torch.Generator().manual_seed(derive_seed(self.seed, ORDER_STREAM, epoch))
        return [indices[i] for i in torch.randperm(len(indices), generator=gen).tolist()]

    def epoch_steps(self, n: int) -> list[list[int]]:
        """Positions (in the epoch order) of this rank's images, one list per step.

        The global batches are those of one process (``batch_size``, ``drop_last`` when at least one full batch
        exists); each is split into contiguous, nearly equal slices, one per rank.
        """
        rank, world = mmdist.get_dist_info()
        bs = self.batch_size
        stop = (n // bs) * bs if self.drop_last and n >= bs else n
        steps = []
        for start in range(0, stop, bs):
            part = np.arange(start, min(start + bs, stop))
            steps.append(np.array_split(part, world)[rank].tolist())
        return steps

    def train_epoch(self, dataset, indices: Sequence[int], epoch: int) -> dict[str, Any]:
        """One epoch; ``self.on_train_iter(iteration, batch, stats)`` runs after every step (progress, hooks)."""
        order = self.epoch_order(indices, epoch)
        views = ViewDataset(dataset, self.train_view, derive_seed(self.seed, VIEW_STREAM, epoch), order,
                            skip_unreadable=True)
        steps = self.epoch_steps(len(order))
        loader = DataLoader(views, batch_sampler=steps, num_workers=self.num_workers,
                            pin_memory=self.device.type == 'cuda', collate_fn=collate_views)
        distributed = mmdist.is_distributed()
        loss_sum, correct, seen = 0.0, 0, 0
        skipped: list[dict] = []
        for it, batch in enumerate(loader, 1):
            if self.before_train_iter is not None:
                self.before_train_iter(it, batch)
            skipped += self.ledger.add(batch['skipped'], 'train')
            n = len(batch['index'])
            self._where = f'at epoch {epoch + 1}, iteration {it}'
            images = batch['views'][:, 0].to(self.device, non_blocking=True) if n else None
            labels = batch['label'].to(self.device)
            if distributed:
                count = int(_sum(n)[0])
                if not count:
                    continue
                loss, right = self.train_step(images, labels, count)
            elif not n:
                continue
            else:
                loss, right = self.train_step(images, labels)
            loss_sum, correct, seen = loss_sum + loss * n, correct + right, seen + n
            if self.log_interval and it % self.log_interval == 0 and seen:
                logger.info('epoch [%d/%d] iter [%d/%d] loss %.4f acc %.2f lr %.3e', epoch + 1, self.epochs, it,
                            len(steps), loss_sum / seen, 100.0 * correct / seen, self.optimizer.param_groups[0]['lr'])
            if self.on_train_iter is not None:
                self.on_train_iter(it, batch, dict(loss=loss, images=n))
        loss_sum, correct, seen = _sum(loss_sum, correct, seen) if distributed else (loss_sum, correct, seen)
        skipped = _gather(skipped)
        seen, correct = int(seen), int(correct)
        if not seen:
            if skipped:
                raise RuntimeError(f'none of the {len(skipped)} training images of epoch {epoch + 1} could be read '
                                   f"(first: {skipped[0]['path']}: {skipped[0]['error']}); check the files")
            raise RuntimeError('the training set is empty')
        return dict(loss=loss_sum / seen, train_acc=100.0 * correct / seen, images=seen, skipped=skipped)

    @torch.no_grad()
    def evaluate(self, dataset, indices: Sequence[int]) -> float:
        """Top-1 accuracy (%) of the current prompts on the original views of the readable images of ``indices``
        (each rank evaluates every ``world``-th of them; the counts are summed).

        The unreadable ones are left in ``self.last_val_skipped`` (``dict(index, path, error)`` each).
        """
        self.model.eval()
        rank, world = mmdist.get_dist_info()
        # an image-conditioned learner (CoCoOp) has per-image prompts: its batches go through model(images)
        conditioned = self.learner.conditions_on_image
        prompts = None if conditioned else self.model.prompts()
        text = None if conditioned else self.model.text_features(prompts)
        loader = DataLoader(ViewDataset(dataset, self.val_view, self.seed, list(indices)[rank::world],
                                        skip_unreadable=True),
                            batch_size=self.val_batch_size, shuffle=False, num_workers=self.num_workers,
                            collate_fn=collate_views)
        correct = total = 0
        skipped: list[dict] = []
        for it, batch in enumerate(loader, 1):
            if self.before_val_iter is not None:
                self.before_val_iter(it, batch)
            skipped += self.ledger.add(batch['skipped'], 'val')
            if len(batch['index']):
                images = batch['views'][:, 0].to(self.device)
                logits = self.model(images) if conditioned else \
                    self.model.logits(self.model.image_features(images, prompts), text)
                correct += int((logits.argmax(dim=1).cpu() == batch['label']).sum())
                total += len(batch['label'])
            if self.on_val_iter is not None:
                self.on_val_iter(it, batch)
        if mmdist.is_distributed():
            correct, total = (int(x) for x in _sum(correct, total))
        self.last_val_skipped = _gather(skipped)
        if not total and self.last_val_skipped:
            first = self.last_val_skipped[0]
            raise RuntimeError(f'none of the {len(self.last_val_skipped)} validation images could be read (first: '
                               f"{first['path']}: {first['error']}); check val_data or set val_data=None")
        return 100.0 * correct / max(total, 1)

    def end_epoch(self, val_acc: float | None) -> None:
        """After an epoch (and its validation): step the schedule, count the epoch, keep the best state."""
        self.scheduler.step()
        self.epoch += 1
        if val_acc is not None and (self.best_val_acc is None or val_acc > self.best_val_acc):
            self.best_epoch, self.best_val_acc, self.best_state = self.epoch, val_acc, self.learner.snapshot()

    def select_final(self) -> int:
        """Put the ``final_model`` state into the learner; returns its epoch."""
        if self.final_model == 'best_val' and self.best_state is not None:
            self.learner.restore(self.best_state)
            self.selected_epoch = self.best_epoch
        else:
            self.selected_epoch = self.epoch
        return self.selected_epoch

    @property
    def unreadable(self) -> dict[str, dict[str, str]]:
        """Every unreadable file met so far, per split: path -> error."""
        return {split: {r['path']: r['error'] for r in self.ledger.entries(split)} for split in ('train', 'val')}

    # ------------------------------------------------------------------ resume state (tensors + JSON, no pickle)
    def state_dict(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tensors = {f'learner.{k}': v for k, v in self.learner.snapshot().items()}
        if self.best_state is not None:
            tensors.update({f'best.{k}': v for k, v in self.best_state.items()})
        opt_tensors, opt_rest = flatten_optimizer(self.optimizer.state_dict())
        tensors.update(opt_tensors)
        document = dict(epoch=self.epoch, epochs=self.epochs, optimizer=opt_rest, scheduler=self.scheduler.state_dict(),
                        scaler=self.scaler.state_dict(), history=self.history, best_epoch=self.best_epoch,
                        best_val_acc=self.best_val_acc, unreadable=self.ledger.state_dict())
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
        self.ledger.load_state_dict(_ledger_state(document.get('unreadable') or {}))


def _ledger_state(saved: Mapping) -> dict:
    """The ledger state of a resume file (older files stored ``{split: {path: error}}``)."""
    out = {}
    for split, bucket in saved.items():
        out[split] = {p: (r if isinstance(r, dict) else dict(index=-1, path=p, error=r)) for p, r in bucket.items()}
    return out
