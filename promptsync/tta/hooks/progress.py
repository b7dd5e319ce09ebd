"""A progress bar with the running top-1 accuracy (resumed samples included) and the skipped-image count."""
from __future__ import annotations

import sys

from tqdm import tqdm

from promptsync.registry import TTA_HOOKS

from .base import TTAHook


@TTA_HOOKS.register_module()
class ProgressBarHook(TTAHook):
    """Args: ``disable``: turn the bar off (e.g. in logs of batch jobs).

    The bar counts predicted and skipped (unreadable) images; ``skipped=N`` appears once an image was skipped.
    """

    priority = 90

    def __init__(self, disable: bool = False):
        self.disable = disable
        self.bar = None
        self.runner = None

    def before_run(self, runner) -> None:
        self.runner = runner
        self.correct = runner.resumed_correct
        self.seen = runner.resumed_count
        self.skipped = 0
        self.bar = tqdm(total=runner.num_samples, initial=self.seen, desc=runner.run_name, unit='img',
                        disable=self.disable, file=sys.stderr, dynamic_ncols=True)

    def after_batch(self, results) -> None:
        skipped = int(getattr(self.runner, 'num_skipped', 0))
        self.seen += len(results)
        self.correct += sum(int(r.pred == r.label) for r in results)
        self.bar.update(len(results) + skipped - self.skipped)
        self.skipped = skipped
        postfix = dict(top1=f'{100.0 * self.correct / max(self.seen, 1):.2f}')
        if skipped:
            postfix['skipped'] = skipped
        self.bar.set_postfix(postfix)

    def after_run(self, runner, metrics) -> None:
        if self.bar is not None:
            self.bar.close()
