#!/usr/bin/env python
"""Convert a Dassl / CoOp / MaPLe / PromptAlign YAML config (trainer YAML + dataset YAML) into a promptsync config.

    python tools/convert_config.py TRAINER.yaml [DATASET.yaml] [--trainer NAME] [--job train|test] [--seed S]
                                   [--prompt-checkpoint FILE] -o OUT.py [KEY VALUE ...]

The YAML pair and the trailing KEY VALUE options are read as their train.py reads them (Dassl's defaults, the
dataset YAML, the trainer YAML, --trainer/--seed/--root, then the options). OUT.py lists our _base_ configs and the
overrides, under a header naming the source files with their sha256 and the verdict of every key (mapped, or
ignored with the reason). A key whose value promptsync cannot reproduce is refused: nothing is written and the
error lists every such key with its fix. tools/train.py and tools/test.py accept the same YAML pair directly and
build the same config. The mapping table: docs/interop.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import promptsync  # noqa: F401  (installed, editable or not)
except ImportError:  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptsync.engine.config_check import check_config  # noqa: E402
from promptsync.interop import convert_dassl_config, load_conversion, write_config  # noqa: E402
from promptsync.utils.cli import base_parser, run_cli  # noqa: E402


def main(argv=None) -> Path:
    p = base_parser(__doc__)
    p.add_argument('trainer_yaml', metavar='TRAINER.yaml')
    p.add_argument('dataset_yaml', nargs='?', metavar='DATASET.yaml')
    p.add_argument('-o', '--out', required=True, metavar='OUT.py', help='the promptsync config to write')
    p.add_argument('--job', choices=('train', 'test'), default='train',
                   help="'train' (tools/train.py: few-shot prompt learning) or 'test' (tools/test.py: evaluation, "
                        "PromptAlign's test-time adaptation)")
    p.add_argument('--trainer', help='TRAINER.NAME when the YAML does not set it, as their scripts pass it')
    p.add_argument('--seed', type=int, help='SEED (their --seed)')
    p.add_argument('--root', help='DATASET.ROOT (their --root)')
    p.add_argument('--prompt-checkpoint', help='the trained prompts of a test job (model.prompt_checkpoint)')
    p.add_argument('opts', nargs='*', default=[], metavar='KEY VALUE', help='Dassl options, e.g. DATASET.NUM_SHOTS 16')
    args = p.parse_intermixed_args(argv)
    if Path(args.out).suffix != '.py':
        p.error(f'-o {args.out}: the output is a python config, name it *.py')
    conv = convert_dassl_config(args.trainer_yaml, args.dataset_yaml, args.job, opts=args.opts, trainer=args.trainer,
                                seed=args.seed, root=args.root, prompt_checkpoint=args.prompt_checkpoint)
    check_config(load_conversion(conv), args.job)   # what the Runner would refuse, refused before writing
    out = write_config(conv, args.out)
    print(conv.report())
    print(f'wrote {out}')
    return out


if __name__ == '__main__':
    sys.exit(run_cli(main))
