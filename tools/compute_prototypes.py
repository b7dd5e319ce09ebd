#!/usr/bin/env python
"""Compute the offline prototypes of a method config (PromptAlign's source statistics, PromptSync's class prototypes).

    python tools/compute_prototypes.py CONFIG [--cfg-options key=value ...] [--work-dir DIR] [--no-resume]
    torchrun --nproc_per_node=N tools/compute_prototypes.py CONFIG --launcher pytorch

Streams ``proxy_data.dataset`` (ImageNet train for the real suite) through the config's frozen, prompted vision
encoder and writes ``prototypes.file``: per layer in ``prototypes.layers`` the per-class token mean and variance,
the class counts and per-class visual prototypes, with metadata (its fingerprint and source, backbone, prompt
checkpoint hash, layers, dataset, counts) that test runs check. An interrupted run resumes from
``<file>.partial.safetensors``; a bank of another source at the path is never overwritten unless --no-resume (suites
skip the job when the bank is current). The log and run.json go to the work dir (default ``<file stem>.work/``).
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import promptsync  # noqa: F401  (installed, editable or not)
except ImportError:  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptsync.engine import Runner  # noqa: E402
from promptsync.utils.cli import config_from_args, config_parser, run_cli  # noqa: E402


def main(argv=None) -> Path:
    p = config_parser(__doc__, 'a method config with proxy_data and prototypes',
                      '"proxy_data.dataset.root=/data" prototypes.file=/tmp/bank.safetensors')
    p.add_argument('--no-resume', action='store_true',
                   help='ignore a partial file and start over, replacing any bank at prototypes.file')
    args = p.parse_args(argv)
    runner = Runner(config_from_args(args), resume=not args.no_resume, launcher=args.launcher)
    path = runner.prototypes()
    if runner.rank == 0:
        print(f'prototypes: {path}')
    return path


if __name__ == '__main__':
    sys.exit(run_cli(main))
