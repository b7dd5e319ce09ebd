#!/usr/bin/env python
"""Run a config over a grid of config-key values (and seeds) and tabulate the metrics.

    python tools/ablate.py CONFIG --grid KEY=V1,V2 [--grid KEY2=V3,V4 ...] [--seeds 0,1,2]
                           [--cfg-options KEY=VALUE ...] [--work-dir DIR] [--metric top1]
                           [--allow-new-keys] [--no-resume]

Each (cell, seed) runs like tools/test.py in <work_dir>/cells/<cell name>__seed=<s>; the table goes to
stdout and to ablation.{csv,json,md} in the work dir (default: work_dirs/ablate/<config name>). Completed
runs are reused on a re-run. Exit code: 0 if every run succeeded, 1 if any failed, 2 for a bad grid.
See docs/ablation.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import promptsync  # noqa: F401  (installed, editable or not)
except ImportError:  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptsync.experiments.ablate import AblationError, parse_grid_arg, parse_seeds, run_ablation  # noqa: E402
from promptsync.utils.config import load_config  # noqa: E402
from promptsync.utils.cli import add_cfg_options, base_parser, run_cli  # noqa: E402

def _argtype(parse):
    def wrapped(text: str):
        try:
            return parse(text)
        except AblationError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
    wrapped.__name__ = parse.__name__
    return wrapped

def parse_args(argv=None) -> argparse.Namespace:
    p = base_parser(__doc__)
    p.add_argument('config', help='method config file, e.g. configs/tpt/vit_b16_imagenet_r.py')
    p.add_argument('--grid', nargs='+', action='extend', type=_argtype(parse_grid_arg), default=[],
                   metavar='KEY=V1,V2', help='a swept config key and its values (repeatable; values in brackets '
                                             'are one list/tuple value, e.g. tta.views.crop_scale=[0.3,1],[0.5,1])')
    p.add_argument('--seeds', type=_argtype(parse_seeds), help='run every cell with each seed, e.g. 0,1,2')
    add_cfg_options(p, 'data.dataset.root=/data')
    p.add_argument('--work-dir', help='output folder (default: work_dirs/ablate/<config name>)')
    p.add_argument('--metric', help="metric that picks the best cell (default: ablation.metric or 'top1')")
    p.add_argument('--allow-new-keys', action='store_true',
                   help='allow grid keys that do not exist yet (their parent dict must exist)')
    p.add_argument('--no-resume', action='store_true', help='recompute every run, discarding earlier results')
    return p.parse_args(argv)

def main(argv=None) -> int:
    args = parse_args(argv)
    grid = {}
    for key, values in args.grid:
        if key in grid:
            print(f"error: --grid {key} is given twice; list all its values once: {key}=V1,V2", file=sys.stderr)
            return 2
        grid[key] = values
    try:
        cfg = load_config(args.config, args.cfg_options)
        state = run_ablation(cfg, grid, args.seeds, args.work_dir, args.metric, args.allow_new_keys,
                             resume=not args.no_resume)
    except (AblationError, FileNotFoundError) as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    return 1 if state['counts']['failed'] else 0

if __name__ == '__main__':
    sys.exit(run_cli(main))
