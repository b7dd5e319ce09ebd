#!/usr/bin/env python
"""Compare how two TTA configs move the prompts on the same test images, and which loss term decides the update.

    python tools/compare_updates.py CONFIG_A CONFIG_B [--samples 50] [--cfg-options key=value ...]

--cfg-options apply to both configs (e.g. the dataset split or domain). Prints the sign agreement and cosine of
the two updates, how often the predictions agree, both top-1 accuracies on these images, and for each loss term
of CONFIG_B the share of prompt coordinates its gradient reaches and, of those, the share whose gradient sign
equals the total gradient's. The samples are spread evenly over the dataset (which is sorted by class).
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

try:
    import promptsync  # noqa: F401  (installed, editable or not)
except ImportError:  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tabulate import tabulate  # noqa: E402

from promptsync.experiments.compare_updates import compare_updates  # noqa: E402
from promptsync.utils.config import load_config  # noqa: E402
from promptsync.utils.cli import add_cfg_options, base_parser, run_cli  # noqa: E402


def main(argv=None) -> dict:
    p = base_parser(__doc__)
    p.add_argument('config_a')
    p.add_argument('config_b')
    p.add_argument('--samples', type=int, default=50)
    add_cfg_options(p, 'data.dataset.root=/data')
    p.add_argument('--json', help='also write the result here')
    args = p.parse_args(argv)
    out = compare_updates(load_config(args.config_a, args.cfg_options), load_config(args.config_b, args.cfg_options),
                          args.samples)
    print(tabulate([[out['samples'], f"{out['update_sign_agreement']:.3f}", f"{out['update_cosine']:.3f}",
                     f"{out['prediction_agreement']:.1f}", f"{out['top1']['a']:.1f}", f"{out['top1']['b']:.1f}"]],
                   headers=['samples', 'update sign agreement', 'update cosine', 'same prediction %', 'top1 A',
                            'top1 B']))
    print()
    print(tabulate([[n, f"{t['touched']:.3f}", f"{t['sign_share']:.3f}", f"{t['grad_norm']:.3g}"]
                    for n, t in out['terms_of_b'].items()],
                   headers=['loss term of B', 'coordinates reached', 'of those, with the total sign',
                            'gradient norm']))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + '\n')
    return out


if __name__ == '__main__':
    sys.exit(run_cli(main))
