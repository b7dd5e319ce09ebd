#!/usr/bin/env python
"""Check the benchmark datasets before a run: found / missing / malformed, and what to download and where.

    python tools/check_data.py [--suite dg|cross_dataset|all|KEY,...] [--data-root DIR] [--images N|all]
                               [--imagenet-train] [--json OUT]

Each dataset is built as its config builds it, its label map is checked, its image count is compared with the full
test set (fewer is a warning) and N images spread over its classes are decoded (default 300; `all`, or 0 to skip).
Exit code: 1 when a dataset is malformed, when a dataset asked for (by key, or by suite: `dg`, `cross_dataset`) is
missing, or when no dataset is found at all; 0 otherwise (warnings allowed). `all` (the default) surveys the 15
test sets without asking for any. Keys: imagenet, imagenet_train (only when named or with --imagenet-train),
imagenet_v2, imagenet_sketch, imagenet_a, imagenet_r and the 10 cross-dataset keys (docs/datasets.md).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

try:
    import promptsync  # noqa: F401  (installed, editable or not)
except ImportError:  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptsync.datasets.doctor import DEFAULT_IMAGES, check_data, format_report, select  # noqa: E402
from promptsync.utils.cli import base_parser, run_cli  # noqa: E402


def parse_images(text: str) -> int | None:
    if text == 'all':
        return None
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"--images expects a number of images or 'all', got {text!r}")
    return int(text)


def main(argv=None) -> int:
    p = base_parser(__doc__)
    p.add_argument('--suite', default='all', help='dg, cross_dataset, all (default) or dataset keys, comma-separated')
    p.add_argument('--data-root', default=os.environ.get('PROMPTSYNC_DATA', 'data'),
                   help='the data root (default: $PROMPTSYNC_DATA, else ./data, as the configs)')
    p.add_argument('--images', type=parse_images, default=DEFAULT_IMAGES,
                   help=f'images to decode per dataset, spread over its classes (default {DEFAULT_IMAGES}; all; 0)')
    p.add_argument('--imagenet-train', action='store_true', help='check the ImageNet training split too')
    p.add_argument('--json', help='write the full report to this file')
    args = p.parse_args(argv)
    try:
        selection = select(args.suite, args.imagenet_train)
    except ValueError as err:
        p.error(str(err))
    report = check_data(selection, args.data_root, args.images)
    print(format_report(report))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=1) + '\n')
    return report['exit_code']


if __name__ == '__main__':
    sys.exit(run_cli(main))
