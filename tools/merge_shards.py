#!/usr/bin/env python
"""Merge the finished ``--shard I/N`` jobs of a work dir into one result, equal to a single-process run.

    python tools/merge_shards.py WORK_DIR

Each ``tools/test.py CONFIG --shard I/N --work-dir WORK_DIR`` job writes ``WORK_DIR/shards/I-of-N/``; the last
one to finish merges them by itself. This does the same by hand (e.g. when that job was killed after finishing):
it checks that all N shards finished with the same fingerprint and sample selection, merges ``predictions.jsonl``
and ``skipped.jsonl`` sorted by index and writes ``metrics.json``, ``run.json`` and ``results.md``. Nothing is
merged while a shard is missing or unfinished.
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import promptsync  # noqa: F401  (installed, editable or not)
except ImportError:  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptsync.engine.lock import WorkDirLock  # noqa: E402
from promptsync.errors import ResourceError  # noqa: E402
from promptsync.engine.loops.tta_results import merge_complete_shards, results_table  # noqa: E402
from promptsync.utils.cli import base_parser, run_cli  # noqa: E402


def main(argv=None) -> dict:
    p = base_parser(__doc__)
    p.add_argument('work_dir')
    args = p.parse_args(argv)
    if not Path(args.work_dir).is_dir():
        raise ResourceError(f'{args.work_dir} is not a folder', where=args.work_dir,
                            fix='give the --work-dir of the --shard I/N jobs')
    with WorkDirLock(args.work_dir):
        out = merge_complete_shards(args.work_dir)
    print(results_table(out, out.get('timing')))
    return out


if __name__ == '__main__':
    sys.exit(run_cli(main))
