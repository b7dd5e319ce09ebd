"""A progress bar with the running top-1 accuracy (resumed samples included)."""
from __future__ import annotations

import sys

from tqdm import tqdm

from promptsync.registry import TTA_HOOKS

from .base import TTAHook


@TTA_HOOKS.register_module()
class ProgressBarHook(TTAHook):
    """Args: ``disable``: turn the bar off (e.g. in logs of batch jobs)."""

    priority = 90

    def __init__(self, disable: bool = False):
        self.disable = disable
        self.bar = None

    def before_run(self, runner) -> None:
        self.correct = runner.resumed_correct
        self.seen = runner.resumed_count
        self.bar = tqdm(total=runner.num_samples, initial=self.seen, desc=runner.run_name, unit='img',
                        disable=self.disable, file=sys.stderr, dynamic_ncols=True)

    def after_batch(self, results) -> None:
        self.seen += len(results)
        self.correct += sum(int(r.pred == r.label) for r in results)
        self.bar.update(len(results))
        self.bar.set_postfix(top1=f'{100.0 * self.correct / max(self.seen, 1):.2f}')

    def after_run(self, runner, metrics) -> None:
        if self.bar is not None:
            self.bar.close()
