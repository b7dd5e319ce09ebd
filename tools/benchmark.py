#!/usr/bin/env python
"""Run a benchmark suite: every (method, dataset, seed) cell, then one table (methods x datasets + averages).

    python tools/benchmark.py SUITE_CONFIG [--methods zeroshot,tpt,...] [--work-dir DIR] [--no-resume]
                              [--cfg-options key=value ...]

Finished cells are reused on a re-run and interrupted ones resume; a failing cell is recorded (traceback in its
error.txt) and the suite goes on; the exit code is 1 when a cell failed. Outputs in the work dir (default
work_dirs/benchmark/<suite name>): benchmark.md (one table per metric of suite.tables), benchmark.json,
benchmark.png (grouped bars, error bars over seeds) and cells/<method>/<dataset>/seed<s>/.
--cfg-options change the suite config; options for every cell go under suite.cfg_options with the cell's key
written in full, e.g. "suite.cfg_options.data.max_samples=50" (added to the suite's own cell options).
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import promptsync  # noqa: F401  (installed, editable or not)
except ImportError:  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptsync.experiments.suites import SuiteError, run_suite, suite_text  # noqa: E402
from promptsync.utils.cli import add_cfg_options, base_parser, run_cli  # noqa: E402
from promptsync.utils.config import load_config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = base_parser(__doc__)
    p.add_argument('suite')
    p.add_argument('--methods', help='comma-separated subset of the suite\'s methods')
    p.add_argument('--work-dir')
    p.add_argument('--no-resume', action='store_true', help='recompute every cell')
    add_cfg_options(p, 'suite.seeds=[0] suite.cfg_options.data.max_samples=50')
    args = p.parse_args(argv)
    cfg = load_config(args.suite, args.cfg_options)
    name = (cfg.get('suite') or {}).get('name', Path(args.suite).stem)
    work_dir = Path(args.work_dir or Path('work_dirs') / 'benchmark' / name)
    try:
        out = run_suite(cfg, work_dir, args.methods.split(',') if args.methods else None,
                        resume=not args.no_resume, root=ROOT)
    except SuiteError as err:
        print(f'error: {err}', file=sys.stderr)
        return 2
    print(suite_text(out))  # run_suite wrote the files
    print(f"\n{out['metric']} (%), mean ± std over seeds; {out['wall_s']:.0f} s; tables in {work_dir}/benchmark.md")
    figure = work_dir / 'benchmark.png'
    if figure.is_file():
        print(f'figure: {figure}')
    if out['failed']:
        print(f"{len(out['failed'])} cells failed: {out['failed']}", file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(run_cli(main))
