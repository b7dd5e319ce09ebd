#!/usr/bin/env python
"""Convert a MaPLe / PromptAlign / CoOp / CoCoOp prompt checkpoint, or an OpenAI TorchScript CLIP archive.

    python tools/convert_checkpoint.py SRC DST.safetensors [--config CONFIG] [--cfg-options ...]
    python tools/convert_checkpoint.py --openai-jit ~/.cache/clip/ViT-B-16.pt ViT-B-16-openai.safetensors [--model M]

SRC: a Dassl checkpoint as released by MaPLe/PromptAlign (e.g. .../MultiModalPromptLearner/model.pth.tar-2) or
written by CoOp/CoCoOp (.../prompt_learner/model.pth.tar-50), a plain state dict, or a safetensors file. Only the
learnable prompt tensors are kept (fp32); frozen CLIP weights and the class-dependent token_prefix/token_suffix
buffers are dropped and counted (docs/interop.md, "Checkpoints"). With --config, the result is also
loaded into that config's prompt learner to check every key and shape (needs the config's backbone weights, or
override them, e.g. --cfg-options model.backbone.pretrained=None for a shape-only check).

--openai-jit: SRC is a TorchScript archive of OpenAI's clip.load (a file you trust: torch.jit.load compiles its
TorchScript program; its forward is never run). Its state dict (OpenAI key names = open_clip's CLIP key names) is
written as safetensors with metadata quick_gelu=true; --model NAME also loads it (strict) into that open_clip model.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

try:
    import promptsync  # noqa: F401  (installed, editable or not)
except ImportError:  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptsync.models.prompt_learners.checkpoint import (  # noqa: E402
    file_sha256, read_prompt_checkpoint, save_prompt_checkpoint)
from promptsync.utils.cli import add_cfg_options, base_parser, run_cli  # noqa: E402


def main(argv=None) -> dict:
    p = base_parser(__doc__)
    p.add_argument('src')
    p.add_argument('dst')
    p.add_argument('--config', help='check the converted tensors against this config\'s prompt learner')
    p.add_argument('--openai-jit', action='store_true',
                   help='SRC is an OpenAI TorchScript CLIP archive: write its weights as open_clip safetensors')
    p.add_argument('--model', help='with --openai-jit: an open_clip model name to check the weights against')
    add_cfg_options(p, 'model.backbone.pretrained=None')
    args = p.parse_args(argv)
    if args.openai_jit:
        from promptsync.models.backbones.openai_jit import convert_openai_jit
        meta = convert_openai_jit(args.src, args.dst, args.model)
        print(f'wrote {args.dst}: OpenAI CLIP weights in open_clip layout, quick_gelu=true; architecture '
              f'{meta["architecture"]}')
        print(f'use it with: model.backbone.pretrained={args.dst} (any open_clip model of that architecture; the '
              'metadata makes it QuickGELU)')
        return dict(meta, dst=str(args.dst))
    state, meta = read_prompt_checkpoint(args.src)
    shapes = {k: list(v.shape) for k, v in state.items()}
    info = dict(source=str(Path(args.src).resolve()), source_sha256=file_sha256(args.src),
                dropped=meta.get('dropped', '{}'), shapes=json.dumps(shapes))
    if args.config:
        from promptsync.models import build_model_for_shapes
        from promptsync.utils.config import load_config
        cfg = load_config(args.config, args.cfg_options)
        ctx = state.get('ctx')
        classes = int(ctx.shape[0]) if ctx is not None and ctx.dim() == 3 else 1  # class-specific contexts: their count
        model = build_model_for_shapes(cfg.model, classes)
        tmp = save_prompt_checkpoint(state, Path(args.dst).with_suffix('.check.safetensors'))
        try:
            from promptsync.models.prompt_learners.checkpoint import load_prompt_checkpoint
            load_prompt_checkpoint(model.prompt_learner, tmp)
        finally:
            tmp.unlink()
        info['checked_against'] = f'{type(model.prompt_learner).__name__} of {args.config}'
    out = save_prompt_checkpoint(state, args.dst, info)
    print(f'wrote {out}: ' + ', '.join(f'{k} {tuple(v)}' for k, v in shapes.items()))
    print(f'dropped: {info["dropped"]}')
    return dict(info, dst=str(out))


if __name__ == '__main__':
    sys.exit(run_cli(main))
