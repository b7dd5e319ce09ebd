"""Per-stage wall-clock accounting of a TTA method (off unless a benchmark turns it on).

Methods wrap their stages in ``with self.timer('text_forward'):``; the default timer does nothing, so the
normal run pays one attribute lookup per stage. ``tools/benchmark_speed.py`` installs an enabled timer, which
synchronises CUDA at stage boundaries so that the time of asynchronous kernels lands in the stage that
launched them.
"""
from __future__ import annotations

import contextlib
import time
from collections import defaultdict
from typing import Iterator

import torch

#: the stages the episodic methods report
STAGES = ('vision_forward', 'text_forward', 'selection', 'loss', 'backward', 'optimizer_step', 'predict')


class StageTimer:
    """Sums seconds per stage name; nested stages are counted in the innermost one only."""

    def __init__(self, enabled: bool = False, sync_cuda: bool = True):
        self.enabled = enabled
        self.sync_cuda = sync_cuda and torch.cuda.is_available()
        self.seconds: dict[str, float] = defaultdict(float)
        self._stack: list[list] = []

    def _now(self) -> float:
        if self.sync_cuda:
            torch.cuda.synchronize()
        return time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        if not self.enabled:
            yield
            return
        start = self._now()
        frame = [stage, 0.0]  # [name, seconds spent in nested stages]
        self._stack.append(frame)
        try:
            yield
        finally:
            self._stack.pop()
            spent = self._now() - start
            self.seconds[stage] += spent - frame[1]
            if self._stack:
                self._stack[-1][1] += spent

    def reset(self) -> None:
        self.seconds.clear()

    def snapshot(self) -> dict[str, float]:
        return dict(self.seconds)


NO_TIMER = StageTimer(enabled=False)
