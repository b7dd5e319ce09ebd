#!/usr/bin/env python
"""Draw the figure of a run's output next to it and print the figure's path.

    python tools/plot.py WORK_DIR_OR_FILE [...] [--bins 15] [--metrics top1,ece]

What it was given is recognised by its contents: a suite result (benchmark.json -> benchmark.png, grouped bars per
method and dataset), an ablation (ablation.json -> ablation.png, heat map or lines), a training log
(train_log.jsonl -> train_curves.png) or a run's predictions (predictions.jsonl -> reliability.png, the reliability
diagram with the ECE's bins). A folder is searched for those four files. --metrics picks the panels of a suite or
ablation figure (default: its metric, and the ECE when the runs measured it); --bins the reliability diagram's.
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import promptsync  # noqa: F401  (installed, editable or not)
except ImportError:  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptsync.utils.cli import base_parser, positive_int, run_cli  # noqa: E402
from promptsync.visualization.plot_files import plot_target  # noqa: E402


def main(argv=None) -> int:
    p = base_parser(__doc__)
    p.add_argument('targets', nargs='+', metavar='WORK_DIR_OR_FILE')
    p.add_argument('--bins', type=positive_int, default=15, help='reliability diagram bins (default 15, as the ECE)')
    p.add_argument('--metrics', help='comma-separated metrics, one panel each (suites and ablations)')
    args = p.parse_args(argv)
    metrics = [m.strip() for m in args.metrics.split(',') if m.strip()] if args.metrics else None
    for target in args.targets:
        for path in plot_target(target, args.bins, metrics):
            print(path)
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
