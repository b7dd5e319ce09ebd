#!/usr/bin/env python
"""Pretrain the embedded benchmark's tiny CLIP from scratch (CPU, minutes).

    python tools/pretrain_tiny_clip.py configs/pretrain/ps_shapes_vit.py [--cfg-options key=value ...]

Renders the captioned shapes data in memory, trains an open_clip model with the CLIP contrastive loss, and writes
``<output.dir>/<output.name>.safetensors`` (loadable as ``model.backbone.pretrained``) and ``<name>.json`` with
its provenance (config, seed, data version, per-epoch log, zero-shot accuracy per domain). The log goes to the
work dir (default work_dirs/pretrain/<config name>).
"""
from __future__ import annotations

import sys
from pathlib import Path

try:
    import promptsync  # noqa: F401  (installed, editable or not)
except ImportError:  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptsync.engine import Runner  # noqa: E402
from promptsync.utils.cli import config_from_args, config_parser, run_cli  # noqa: E402


def main(argv=None) -> Path:
    p = config_parser(__doc__, 'a pretraining config, e.g. configs/pretrain/ps_shapes_vit.py', 'train.epochs=1')
    args = p.parse_args(argv)
    path = Runner(config_from_args(args), launcher=args.launcher).pretrain()
    print(f'checkpoint: {path}')
    return path


if __name__ == '__main__':
    sys.exit(run_cli(main))
