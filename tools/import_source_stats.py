#!/usr/bin/env python
"""Import PromptAlign's released source statistics (vis_means.pt, vis_vars.pt) as a prototype bank for a config.

    python tools/import_source_stats.py ImgNetpre_vis_means.pt ImgNetpre_vis_vars.pt [DST.safetensors] \\
        --config configs/promptalign/vit_b16_imagenet_r.py [--layers 0 1] [--cfg-options ...] [--overwrite]

The files are read with weights_only=True ([layers, tokens, channels]: per vision block input, CLS + patches + the
MaPLe prompt tokens; variances, not standard deviations). The config says what they are for: its backbone and
prompt learner give the token shape each layer must have (checked on a random-weight copy of the backbone: shapes
do not depend on the weights), its ``prototypes.layers`` (or --layers) which layers to keep, and its
``prototypes.file`` where to write (or DST). The bank is one class-agnostic row — PromptAlign's loss; PromptSync's
per-class prototypes cannot come from these files — with metadata naming the files, their sha256 and the config's
backbone / prompt learner / prompt checkpoint, against which a test run checks it (docs/interop.md, "Checkpoints").
"""
from __future__ import annotations

import copy
import sys
from pathlib import Path

try:
    import promptsync  # noqa: F401  (installed, editable or not)
except ImportError:  # a checkout that is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from promptsync.errors import ConfigError, ResourceError  # noqa: E402
from promptsync.utils.cli import add_cfg_options, base_parser, run_cli  # noqa: E402


def token_shapes(model_cfg: dict, layers) -> dict[int, tuple[int, int]]:
    """``(tokens, width)`` of each vision block input of the config's prompted encoder (random weights)."""
    import torch

    from promptsync.models import build_model_for_shapes
    model_cfg = copy.deepcopy(model_cfg)
    model_cfg['backbone'] = dict(model_cfg['backbone'], pretrained=None, precision='fp32')
    model = build_model_for_shapes(model_cfg)
    size = model.backbone.preprocess_cfg['size']
    size = tuple(size) if isinstance(size, (list, tuple)) else (size, size)
    with torch.no_grad(), model.backbone.taps('vision', layers) as taps:
        model.image_features(torch.zeros(1, 3, *size), model.prompts())
    return {layer: tuple(taps[layer].shape[1:]) for layer in layers}


def main(argv=None) -> Path:
    p = base_parser(__doc__)
    p.add_argument('means', help="PromptAlign's vis_means.pt")
    p.add_argument('vars', help="PromptAlign's vis_vars.pt")
    p.add_argument('dst', nargs='?', help='the bank to write (default: the config\'s prototypes.file)')
    p.add_argument('--config', required=True, help='the PromptAlign config that will use the bank')
    p.add_argument('--layers', type=int, nargs='+', help='layers to keep (default: prototypes.layers of the config)')
    p.add_argument('--overwrite', action='store_true', help='replace an existing file at DST')
    add_cfg_options(p, 'model.backbone.pretrained=/path/to/ViT-B-16-openai.safetensors')
    args = p.parse_args(argv)

    from promptsync.prototypes.imported import import_promptalign_stats, import_source
    from promptsync.utils.config import load_config
    cfg = load_config(args.config, args.cfg_options)
    model_cfg = cfg.model.to_dict()
    ckpt = model_cfg.get('prompt_checkpoint')
    if ckpt and not Path(str(ckpt)).expanduser().is_file():
        raise ResourceError(f'prompt checkpoint {ckpt} of {args.config} does not exist; the bank is bound to its '
                            'content', where='model.prompt_checkpoint',
                            fix='convert the MaPLe ImageNet prompts first (tools/convert_checkpoint.py) or set '
                                'model.prompt_checkpoint to the file the run will use')
    pcfg = dict(cfg.get('prototypes') or {})
    layers = tuple(args.layers or pcfg.get('layers') or (0, 1))
    dst = Path(args.dst or pcfg.get('file') or '')
    if not str(dst) or str(dst) == '.':
        raise ConfigError('no destination: the config has no prototypes.file', where='prototypes.file',
                          fix='pass DST.safetensors')
    if dst.exists() and not args.overwrite:
        raise ConfigError(f'{dst} exists; other configs may use it', where=str(dst),
                          fix='pass another DST, or --overwrite to replace it')
    bank = import_promptalign_stats(args.means, args.vars, layers, token_shapes(model_cfg, layers),
                                    import_source(model_cfg), model_cfg['backbone']['model_name'],
                                    extra=dict(imported_for=str(Path(args.config).resolve()),
                                               prompt_learner=model_cfg['prompt_learner']['type']))
    bank.save(dst)
    shape = tuple(bank.mean[layers[0]].shape[1:])
    print(f'wrote {dst}: layers {list(layers)}, tokens x width {shape}, one class-agnostic row (imported from '
          f'{args.means} and {args.vars})')
    return dst


if __name__ == '__main__':
    sys.exit(run_cli(main))
