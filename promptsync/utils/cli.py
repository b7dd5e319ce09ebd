"""Shared command-line plumbing of the tools: the common arguments and how they become a config."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Mapping

from mmengine.config import Config, DictAction

from .config import load_config


def config_parser(description: str, config_help: str, options_example: str) -> argparse.ArgumentParser:
    """A parser with CONFIG, --work-dir, --cfg-options, --seed and --device."""
    p = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config', help=config_help)
    p.add_argument('--work-dir', help='output folder (default: work_dirs/<config folder>/<config name>)')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                   help=f'override config keys, e.g. {options_example} (applied last)')
    p.add_argument('--seed', type=int, help='run seed (everything random derives from it)')
    p.add_argument('--device', help="'auto', 'cpu', 'cuda', 'cuda:1'")
    return p


def config_from_args(args: argparse.Namespace, extra: Mapping[str, Any] | None = None) -> Config:
    """Load ``args.config`` with --seed/--device/``extra`` then --cfg-options (last); default the work dir."""
    options = {k: v for k, v in (('seed', args.seed), ('device', args.device)) if v is not None}
    options.update(extra or {})
    options.update(args.cfg_options)
    cfg = load_config(args.config, options)
    if args.work_dir:
        cfg.work_dir = args.work_dir
    elif not cfg.get('work_dir'):
        cfg.work_dir = str(Path('work_dirs') / Path(args.config).parent.name / Path(args.config).stem)
    return cfg
