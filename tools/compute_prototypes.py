#!/usr/bin/env python
"""Compute the offline prototypes of a method config (PromptAlign's source statistics, PromptSync's class prototypes).

    python tools/compute_prototypes.py CONFIG [--cfg-options key=value ...] [--no-resume]

Streams ``proxy_data.dataset`` (ImageNet train for the real suite) through the config's frozen, prompted vision
encoder and writes ``prototypes.file``: per layer in ``prototypes.layers`` the per-class token mean and variance,
the class counts and per-class visual prototypes, with metadata (backbone, prompt checkpoint hash, layers,
dataset, counts). An interrupted run resumes from ``<file>.partial.safetensors``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmengine.config import DictAction  # noqa: E402

from promptsync.apis.prototypes import compute_prototypes  # noqa: E402
from promptsync.utils.config import load_config  # noqa: E402


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    p.add_argument('--no-resume', action='store_true', help='ignore a partial file and start over')
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    return compute_prototypes(cfg, resume=not args.no_resume)


if __name__ == '__main__':
    main()
