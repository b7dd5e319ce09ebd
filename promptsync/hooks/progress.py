"""Progress of every loop (k/N, rate, ETA and a few running figures), as a tqdm bar on stderr.

A loop publishes a :class:`Progress` per mode in ``runner.progress`` ('test', 'train', 'val') before its epoch
hooks and advances it as it goes; :class:`ProgressBarHook` draws it. In a distributed run only rank 0 draws,
and its bar counts its own shard.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from mmengine.dist import is_main_process
from tqdm import tqdm

from promptsync.registry import HOOKS

from .base import Hook


@dataclass
class Progress:
    """k of ``total`` (``done`` may start above 0 on resume) and named running figures (``postfix``)."""
    total: int
    done: int = 0
    desc: str = ''
    unit: str = 'img'
    postfix: dict[str, Any] = field(default_factory=dict)

    def advance(self, n: int = 1, **postfix: Any) -> None:
        self.done += int(n)
        self.postfix.update(postfix)


@HOOKS.register_module()
class ProgressBarHook(Hook):
    """Args: ``disable``: no bar (e.g. in the logs of batch jobs)."""

    priority = 'VERY_LOW'

    def __init__(self, disable: bool = False):
        self.disable = disable
        self.bars: dict[str, tqdm] = {}

    def _open(self, runner, mode: str) -> None:
        progress = (getattr(runner, 'progress', None) or {}).get(mode)
        if progress is None:
            return
        self._close(mode)
        self.bars[mode] = tqdm(total=progress.total, initial=progress.done, desc=progress.desc, unit=progress.unit,
                               disable=self.disable or not is_main_process(), file=sys.stderr, dynamic_ncols=True,
                               leave=mode != 'val', mininterval=0.1 if sys.stderr.isatty() else 5.0)

    def _update(self, runner, mode: str) -> None:
        bar = self.bars.get(mode)
        progress = (getattr(runner, 'progress', None) or {}).get(mode)
        if bar is None or progress is None:
            return
        if progress.postfix:
            bar.set_postfix(progress.postfix, refresh=False)
        bar.update(progress.done - bar.n)

    def _close(self, mode: str) -> None:
        bar = self.bars.pop(mode, None)
        if bar is not None:
            bar.close()

    def before_test_epoch(self, runner) -> None:
        self._open(runner, 'test')

    def after_test_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._update(runner, 'test')

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._update(runner, 'test')
        self._close('test')

    def before_train_epoch(self, runner) -> None:
        self._open(runner, 'train')

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._update(runner, 'train')

    def after_train_epoch(self, runner) -> None:
        self._update(runner, 'train')
        self._close('train')

    def before_val_epoch(self, runner) -> None:
        self._open(runner, 'val')

    def after_val_iter(self, runner, batch_idx, data_batch=None, outputs=None) -> None:
        self._update(runner, 'val')

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._update(runner, 'val')
        self._close('val')

    def after_run(self, runner) -> None:
        for mode in list(self.bars):
            self._close(mode)
