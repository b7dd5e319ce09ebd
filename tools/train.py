#!/usr/bin/env python
"""Few-shot prompt learning (CoOp / MaPLe) on a frozen CLIP backbone, from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--cfg-options key=value ...] [--seed S] [--device D] [--no-resume]

Writes config.py, log.txt, train_log.jsonl, fewshot_indices.json, resume_state.safetensors and the learned prompts
prompt_learner.safetensors into the work dir (default: work_dirs/<config folder>/<config name>); use them with
--cfg-options model.prompt_checkpoint=<work dir>/prompt_learner.safetensors. Re-running the same config resumes
after the last finished epoch; a different config in the same work dir is refused (see docs/training.md).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmengine.config import DictAction  # noqa: E402

from promptsync.apis.train import train_prompts  # noqa: E402
from promptsync.utils.config import load_config  # noqa: E402


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help='a training config (model, train_data, val_data, trainer)')
    p.add_argument('--work-dir', help='output folder (default: work_dirs/<config folder>/<config name>)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help='override config keys, e.g. trainer.epochs=2 train_data.num_shots=4 (applied last)')
    p.add_argument('--seed', type=int, help='run seed (few-shot subset, initialisation, order, crops)')
    p.add_argument('--device', help="'auto', 'cpu', 'cuda', 'cuda:1'")
    p.add_argument('--no-resume', action='store_true', help='discard a previous training state in the work dir')
    args = p.parse_args(argv)
    options = {k: v for k, v in (('seed', args.seed), ('device', args.device)) if v is not None}
    options.update(args.cfg_options)
    cfg = load_config(args.config, options)
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif not cfg.get('work_dir'):
        cfg.work_dir = str(Path('work_dirs') / Path(args.config).parent.name / Path(args.config).stem)
    path = train_prompts(cfg, resume=not args.no_resume)
    print(f'prompts: {path}')
    return path


if __name__ == '__main__':
    main()
