#!/usr/bin/env python
"""`make demo`: the main job on the embedded offline benchmark, in minutes on a laptop CPU.

Runs zero-shot CLIP, TPT, PromptAlign and PromptSync with the project's tiny CLIP (pretrained by
tools/pretrain_tiny_clip.py and shipped with the package) over the synthetic shapes benchmark's target domains
(sketch, cartoon, corrupted) and its source domain, after computing the source prototypes with
tools/compute_prototypes.py. Prints one table (method x domain, plus the target average) and writes it to
<work-dir>/benchmark.md. Equivalent to: python tools/benchmark.py configs/suites/shapes_demo.py
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

try:
    import promptsync  # noqa: F401  (installed, editable or not)
except ImportError:  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptsync.experiments.suites import run_suite, suite_text  # noqa: E402
from promptsync.utils.config import load_config  # noqa: E402
from promptsync.utils.cli import base_parser, run_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = base_parser(__doc__)
    p.add_argument('--suite', default=str(ROOT / 'configs/suites/shapes_demo.py'))
    p.add_argument('--work-dir', default='work_dirs/demo')
    p.add_argument('--no-resume', action='store_true')
    args = p.parse_args(argv)
    started = time.time()
    out = run_suite(load_config(args.suite), Path(args.work_dir), resume=not args.no_resume, root=ROOT)
    table = suite_text(out)  # run_suite wrote the files
    print(f"\n{out['name']}: top-1 (%) of the tiny CLIP on the synthetic shapes benchmark "
          f"(chance 5%), {time.time() - started:.0f} s\n")
    print(table)
    print(f'\nwritten to {args.work_dir}/benchmark.md; the full run with 3 seeds is in docs/results.md')
    figure = Path(args.work_dir) / 'benchmark.png'
    print(f'figure: {figure}' if figure.is_file() else 'no figure (the warning above says why)')
    return 1 if out['failed'] else 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
