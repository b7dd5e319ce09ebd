#!/usr/bin/env python
"""How the adaptation moved the prompts and the features, for one or several test runs side by side.

    python tools/analyze.py RUN_DIR [RUN_DIR ...] [--out DIR] [--names A B ...]

Each RUN_DIR is the work dir of a tools/test.py run recorded with the AdaptationRecorder hook
(custom_hooks=[dict(type='AdaptationRecorder')], or '../_base_/analysis.py' in the config's _base_). Writes
DIR/analysis.md (tables: prediction flips initial -> adapted, prompt change per branch, feature shifts,
cross-modal consistency, across-sample variance of the adapted text embeddings), DIR/analysis.json and the
figures prompt_change.png, flips.png and consistency.png. DIR defaults to RUN_DIR/analysis for one run and
work_dirs/analysis for several. Definitions: docs/analysis.md.
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import promptsync  # noqa: F401  (installed, editable or not)
except ImportError:  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptsync.analysis.reading import load_run  # noqa: E402
from promptsync.analysis.report import write_report  # noqa: E402
from promptsync.errors import ConfigError  # noqa: E402
from promptsync.utils.cli import base_parser, run_cli  # noqa: E402


def main(argv=None) -> Path:
    p = base_parser(__doc__)
    p.add_argument('run_dirs', nargs='+', metavar='RUN_DIR', help='work dirs of recorded test runs')
    p.add_argument('--out', help='output folder (default: RUN_DIR/analysis for one run, work_dirs/analysis for '
                   'several)')
    p.add_argument('--names', nargs='+', help='a column name per run (default: the run names in run.json)')
    args = p.parse_args(argv)
    if args.names is not None and len(args.names) != len(args.run_dirs):
        raise ConfigError(f'{len(args.names)} names for {len(args.run_dirs)} run dirs', where='--names',
                          fix='give one name per RUN_DIR, or leave --names out')
    names = args.names or [None] * len(args.run_dirs)
    runs = [load_run(d, n) for d, n in zip(args.run_dirs, names)]
    seen: dict[str, int] = {}
    for run in runs:  # two runs of one config (e.g. two seeds) get their dir in the name
        seen[run.name] = seen.get(run.name, 0) + 1
    for run in runs:
        if seen[run.name] > 1:
            run.name = f'{run.name} ({run.path.name})'
    out = Path(args.out) if args.out else (Path(args.run_dirs[0]) / 'analysis' if len(runs) == 1
                                           else Path('work_dirs') / 'analysis')
    md = write_report(runs, out)
    print(md.read_text())
    print(f'written: {md} (+ analysis.json, {", ".join(p.name for p in sorted(out.glob("*.png")))})')
    return md


if __name__ == '__main__':
    sys.exit(run_cli(main))
