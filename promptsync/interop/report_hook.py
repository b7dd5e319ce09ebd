"""The hook that writes a YAML conversion's report into the run's log (tools/train.py, tools/test.py)."""
from __future__ import annotations

from typing import Sequence

from promptsync.hooks.base import Hook


class ConversionReportHook(Hook):
    """Logs the report of a Dassl-style config conversion (every key: mapped / ignored and why) before the run.

    Passed to the Runner by the tools (``Runner(cfg, hooks=[...])``), not through the config: the config stays the
    one tools/convert_config.py writes, and the report's lines are in that file's header.
    """

    priority = 'VERY_HIGH'

    def __init__(self, lines: Sequence[str]):
        self.lines = list(lines)

    def before_run(self, runner) -> None:
        logger = getattr(runner, 'logger', None)
        if logger is not None:
            logger.info('\n'.join(self.lines))
