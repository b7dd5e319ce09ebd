#!/usr/bin/env python
"""Evaluate a method on a dataset from a config.

    python tools/test.py CONFIG [--work-dir DIR] [--cfg-options key=value ...] [--seed S] [--device D]
                                [--max-samples N] [--shard I/N] [--no-resume]

Writes config.py, log.txt, run.json, predictions.jsonl, metrics.json and results.md into the work dir
(default: work_dirs/<method folder>/<config name>). Re-running the same config resumes where it stopped.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptsync.apis import run_test  # noqa: E402
from promptsync.utils.cli import config_from_args, config_parser  # noqa: E402


def parse_shard(text: str) -> list[int]:
    try:
        rank, world = (int(x) for x in text.split('/'))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard expects I/N (e.g. 0/4), got '{text}'") from None
    return [rank, world]


def parse_args(argv=None) -> argparse.Namespace:
    p = config_parser(__doc__, 'method config file, e.g. configs/tpt/vit_b16_imagenet_r.py',
                      'tta.optimizer.lr=1e-3 data.dataset.root=/data')
    p.add_argument('--max-samples', type=int, help='evaluate a seeded random subset of this many images')
    p.add_argument('--shard', type=parse_shard, help='evaluate every N-th image starting at I (I/N)')
    p.add_argument('--no-resume', action='store_true', help='discard predictions already in the work dir')
    p.add_argument('--skip-data-check', action='store_true', help='run even if the label-map check fails')
    return p.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    extra = {}
    if args.max_samples is not None:
        extra['data.max_samples'] = args.max_samples
    if args.shard is not None:
        extra['data.shard'] = args.shard
    return run_test(config_from_args(args, extra), resume=not args.no_resume, check_data=not args.skip_data_check)


if __name__ == '__main__':
    main()
