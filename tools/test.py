#!/usr/bin/env python
"""Evaluate a method on a dataset from a config (test-time adaptation, predictions, metrics).

    python tools/test.py CONFIG [--work-dir DIR] [--cfg-options key=value ...] [--seed S] [--device D]
                                [--max-samples N] [--shard I/N] [--no-resume] [--check] [--debug]
    torchrun --nproc_per_node=N tools/test.py CONFIG --launcher pytorch      # N processes, one merged result
    python tools/test.py TRAINER.yaml --dataset-config-file DATASET.yaml [--trainer NAME] [KEY VALUE ...]
        --cfg-options model.prompt_checkpoint=PROMPTS   # a CoOp / MaPLe / PromptAlign YAML pair (docs/interop.md)

Writes config.py, log.txt, run.json, predictions.jsonl, skipped.jsonl, metrics.json and results.md into the work
dir (default: work_dirs/<method folder>/<config name>). Re-running the same command resumes where it stopped; a
changed config or a changed checkpoint / prototype file is refused (--no-resume starts over). --check lists the
outside resources the config needs (data, weights, prompts, prototypes) and exits. --shard I/N runs one of N
separate jobs in <work dir>/shards/; the last one to finish merges them (or tools/merge_shards.py).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import promptsync  # noqa: F401  (installed, editable or not)
except ImportError:  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptsync.engine import Runner  # noqa: E402
from promptsync.engine.loops.tta_loop import results_table  # noqa: E402
from promptsync.engine.resources import format_resources  # noqa: E402
from promptsync.utils.cli import (add_dassl_arguments, config_from_args, config_parser, conversion_hooks,  # noqa: E402
                                  parse_config_args, positive_int, run_cli)


def parse_shard(text: str) -> list[int]:
    try:
        rank, world = (int(x) for x in text.split('/'))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shard expects I/N (e.g. 0/4), got '{text}'") from None
    if not 0 <= rank < world:
        raise argparse.ArgumentTypeError(f'--shard {text}: need 0 <= I < N')
    return [rank, world]


def parse_args(argv=None) -> argparse.Namespace:
    p = config_parser(__doc__, 'method config file, e.g. configs/tpt/vit_b16_imagenet_r.py',
                      '"tta.optimizer.lr=1e-3" "data.dataset.root=/data"')
    p.add_argument('--max-samples', type=positive_int, help='evaluate a fixed random subset of this many images '
                   '(the same for every seed: data.subset_seed draws it)')
    p.add_argument('--shard', type=parse_shard, help='evaluate shard I of N (a separate job, e.g. a SLURM array)')
    p.add_argument('--no-resume', action='store_true', help='discard predictions already in the work dir')
    p.add_argument('--skip-data-check', action='store_true', help='run even if the label-map check fails')
    p.add_argument('--check', action='store_true', help='list the outside resources the config needs and exit')
    add_dassl_arguments(p)
    return parse_config_args(p, argv)


def main(argv=None):
    args = parse_args(argv)
    extra = {} if args.max_samples is None else {'data.max_samples': args.max_samples}
    cfg = config_from_args(args, extra, job='test')
    if getattr(args, 'conversion', None) is not None:
        print(args.conversion.report())
    runner = Runner(cfg, resume=not args.no_resume, launcher=args.launcher, shard=args.shard,
                    check_data=not args.skip_data_check, hooks=conversion_hooks(args))
    if args.check:
        items = runner.check('test')
        print(format_resources(items))
        return 1 if any(r.missing for r in items) else 0
    out = runner.test()
    if runner.rank == 0 and 'metrics' in out:
        print(results_table(out, out.get('timing')))
    return out


if __name__ == '__main__':
    sys.exit(run_cli(main))
