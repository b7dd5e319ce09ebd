"""``CLIPPretrainLoop``: the embedded benchmark's tiny CLIP, trained from scratch (one process).

The pieces (data, model, optimizer, step, evaluation, outputs) are the benchmark's
(:class:`promptsync.benchmarks.shapes.pretrain.CLIPPretraining`); this loop runs the epochs with progress and
hooks, logs each epoch and writes the checkpoint with its provenance.
"""
from __future__ import annotations

import time
from pathlib import Path

from mmengine.runner import BaseLoop

from promptsync.benchmarks.shapes.pretrain import CLIPPretraining
from promptsync.errors import ConfigError
from promptsync.hooks import Progress
from promptsync.registry import LOOPS
from promptsync.utils.logging import get_logger

logger = get_logger('pretrain')


@LOOPS.register_module()
class CLIPPretrainLoop(BaseLoop):
    def __init__(self, runner, dataloader=None):
        super().__init__(runner, dataloader)

    def run(self) -> Path:
        runner = self.runner
        if runner.distributed:
            raise ConfigError('the tiny CLIP pretrains in one process', where='--launcher',
                              fix='run tools/pretrain_tiny_clip.py without torchrun')
        started = time.time()
        job = CLIPPretraining(runner.cfg)
        hooks, log = runner.hooks, []
        hooks.call('before_train')
        for epoch in range(job.epochs):
            t_ep, loss_sum = time.time(), 0.0
            runner.progress['train'] = progress = Progress(total=job.steps_per_epoch, unit='step',
                                                           desc=f'epoch {epoch + 1}/{job.epochs}')
            hooks.call('before_train_epoch')
            perm = job.epoch_order()
            for b in range(job.steps_per_epoch):
                loss = job.train_step(perm[b * job.batch_size:(b + 1) * job.batch_size])
                loss_sum += loss
                progress.advance(1, loss=f'{loss:.3f}')
                hooks.call('after_train_iter', batch_idx=b, data_batch=None, outputs=dict(loss=loss))
            accs = job.evaluate()
            log.append(dict(epoch=epoch, loss=round(loss_sum / job.steps_per_epoch, 4), val_zero_shot=accs,
                            seconds=round(time.time() - t_ep, 1)))
            logger.info('epoch %d: loss %.3f, val zero-shot %s (%.0f s)', epoch, loss_sum / job.steps_per_epoch, accs,
                        time.time() - t_ep)
            hooks.call('after_train_epoch')
        hooks.call('after_train')
        return job.save(log, time.time() - started)
