#!/usr/bin/env python
"""Pretrain the embedded benchmark's tiny CLIP from scratch (CPU, minutes).

    python tools/pretrain_tiny_clip.py configs/pretrain/ps_shapes_vit.py [--cfg-options key=value ...]

Renders the captioned shapes data in memory, trains an open_clip model with the CLIP contrastive loss, and writes
``<output.dir>/<output.name>.safetensors`` (loadable as ``model.backbone.pretrained``) and ``<name>.json`` with
its provenance (config, seed, data version, per-epoch log, zero-shot accuracy per domain).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmengine.config import DictAction  # noqa: E402

from promptsync.apis.pretrain import pretrain_clip  # noqa: E402
from promptsync.utils.config import load_config  # noqa: E402


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('config')
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    args = p.parse_args(argv)
    return pretrain_clip(load_config(args.config, args.cfg_options))


if __name__ == '__main__':
    main()
