#!/usr/bin/env python
"""Few-shot prompt learning (CoOp / MaPLe) on a frozen CLIP backbone, from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--cfg-options key=value ...] [--seed S] [--device D] [--no-resume]
    torchrun --nproc_per_node=N tools/train.py CONFIG --launcher pytorch    # data parallel over N processes
    python tools/train.py TRAINER.yaml --dataset-config-file DATASET.yaml [--trainer NAME] [--seed S] [KEY VALUE ...]
                                    # a CoOp / MaPLe YAML pair, as their scripts pass it (docs/interop.md)

Writes config.py, log.txt, run.json, train_log.jsonl, fewshot_indices.json, resume_state.safetensors and the learned
prompts prompt_learner.safetensors into the work dir (default: work_dirs/<config folder>/<config name>); use them
with --cfg-options model.prompt_checkpoint=<work dir>/prompt_learner.safetensors. Re-running the same config
resumes after the last finished epoch; a different config (or changed initial prompts / weights) in the same work
dir is refused. A non-finite loss stops training at once and saves nothing from it (see docs/training.md).
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import promptsync  # noqa: F401  (installed, editable or not)
except ImportError:  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptsync.engine import Runner  # noqa: E402
from promptsync.utils.cli import (add_dassl_arguments, config_from_args, config_parser, conversion_hooks,  # noqa: E402
                                  parse_config_args, run_cli)


def main(argv=None) -> Path:
    p = config_parser(__doc__, 'a training config (model, train_data, val_data, trainer)',
                      'trainer.epochs=2 train_data.num_shots=4')
    p.add_argument('--no-resume', action='store_true', help='discard a previous training state in the work dir')
    add_dassl_arguments(p)
    args = parse_config_args(p, argv)
    cfg = config_from_args(args, job='train')
    if getattr(args, 'conversion', None) is not None:
        print(args.conversion.report())
    runner = Runner(cfg, resume=not args.no_resume, launcher=args.launcher, hooks=conversion_hooks(args))
    path = runner.train().checkpoint
    if runner.rank == 0:
        print(f'prompts: {path}')
    return path


if __name__ == '__main__':
    sys.exit(run_cli(main))
