"""OpenAI's TorchScript CLIP archives (the ``~/.cache/clip/*.pt`` files of ``clip.load``) -> open_clip safetensors.

OpenAI ships CLIP as TorchScript archives: a zip holding ``<name>/code/`` (the TorchScript program),
``<name>/constants.pkl`` and ``<name>/data.pkl`` + tensors. ``torch.load(weights_only=True)`` cannot read them
(PyTorch refuses TorchScript archives under ``weights_only``), and promptsync never loads one on its own: a
``pretrained=`` path to such an archive is refused with the conversion command (:func:`conversion_command`).

The conversion is an explicit action on a file the user trusts: ``torch.jit.load`` compiles the archive's
TorchScript code with PyTorch's TorchScript compiler and restores its modules (running any TorchScript
``__setstate__`` they define). TorchScript is not Python: it cannot import Python modules or call Python functions,
so loading is not the arbitrary code execution of an unpickled Python file — but its interpreter can call any
registered TorchScript operator, which is why only an archive you trust (OpenAI's own download) should be converted.
The model's ``forward`` is never run; only ``state_dict()`` is read.

The state dict has OpenAI's key names, which are open_clip's ``CLIP`` names
(``open_clip.model.build_model_from_openai_state_dict`` loads it as is) less three scalar entries
(``input_resolution``, ``context_length``, ``vocab_size``), which are dropped and recorded. The result is a
safetensors file whose metadata states ``quick_gelu=true`` (OpenAI's models were trained with QuickGELU) and the
architecture read from the shapes, so the ``OpenCLIP`` backbone builds the right activation without being told.
"""
from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import torch

from promptsync.utils.files import require_file, write_safetensors
from promptsync.utils.hashing import file_sha256

FORMAT = 'open_clip-state-dict'
SCALAR_KEYS = ('input_resolution', 'context_length', 'vocab_size')


def is_torchscript_archive(path: str | os.PathLike) -> bool:
    """A zip with a TorchScript program (``*/code/`` and ``*/constants.pkl``); ``torch.save`` zips have neither."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError):
        return False
    return any(n.endswith('/constants.pkl') or n == 'constants.pkl' for n in names) and \
        any('/code/' in n or n.startswith('code/') for n in names)


def conversion_command(path: str | os.PathLike) -> str:
    src = Path(path)
    dst = src.with_name(f'{src.stem}-openai.safetensors')
    return f'python tools/convert_checkpoint.py --openai-jit {src} {dst}'


def architecture(state: dict[str, torch.Tensor]) -> dict:
    """What the shapes say (as ``build_model_from_openai_state_dict`` reads them); ViT and ModifiedResNet towers."""
    text_layers = len({k.split('.')[2] for k in state if k.startswith('transformer.resblocks.')})
    out = dict(embed_dim=int(state['text_projection'].shape[1]), context_length=int(state['positional_embedding'].shape[0]),
               vocab_size=int(state['token_embedding.weight'].shape[0]), text_width=int(state['ln_final.weight'].shape[0]),
               text_layers=text_layers)
    if 'visual.proj' in state:
        patch = int(state['visual.conv1.weight'].shape[-1])
        grid = round((state['visual.positional_embedding'].shape[0] - 1) ** 0.5)
        out.update(vision='vit', vision_width=int(state['visual.conv1.weight'].shape[0]), patch_size=patch,
                   image_size=patch * grid,
                   vision_layers=sum(k.startswith('visual.') and k.endswith('.attn.in_proj_weight') for k in state))
    else:
        out.update(vision='modified_resnet', vision_width=int(state['visual.layer1.0.conv1.weight'].shape[0]),
                   vision_layers=[len({k.split('.')[2] for k in state if k.startswith(f'visual.layer{b}.')})
                                  for b in (1, 2, 3, 4)])
    return out


def convert_openai_jit(src: str | os.PathLike, dst: str | os.PathLike, model_name: str | None = None) -> dict:
    """Read ``src``'s state dict with ``torch.jit.load`` (its forward is never run) and write open_clip safetensors to ``dst``.

    With ``model_name`` the tensors are loaded (strict) into that open_clip model built with QuickGELU, as a check.
    Returns the metadata written.
    """
    src = require_file(src, 'OpenAI TorchScript CLIP archive')
    if not is_torchscript_archive(src):
        raise ValueError(f'{src} is not a TorchScript archive (no code/ and constants.pkl inside); a torch.save or '
                         'safetensors checkpoint loads directly: pass it as model.backbone.pretrained')
    module = torch.jit.load(str(src), map_location='cpu')  # compiles TorchScript (trusted file); forward never run
    state = {k: v.detach().clone().contiguous() for k, v in module.state_dict().items()}
    scalars = {k: (state.pop(k).tolist() if k in state else None) for k in SCALAR_KEYS}
    # the causal text mask is derived from the context length (open_clip rebuilds it; a scripted open_clip model
    # lists it among its tensors, OpenAI's archives do not)
    masks = sorted(k for k in state if k == 'attn_mask' or k.endswith('.attn_mask'))
    for key in masks:
        del state[key]
    for key in ('text_projection', 'positional_embedding', 'token_embedding.weight', 'ln_final.weight'):
        if key not in state:
            raise ValueError(f'{src} is a TorchScript archive but not an OpenAI CLIP model (no {key})')
    arch = architecture(state)
    meta = dict(format=FORMAT, quick_gelu='true', activation='QuickGELU (OpenAI CLIP weights)',
                source=str(src.resolve()), source_sha256=file_sha256(src), converted_by='tools/convert_checkpoint.py '
                '--openai-jit (torch.jit.load -> state_dict; OpenAI key names = open_clip CLIP key names)',
                dropped_scalars=json.dumps(scalars), dropped_masks=json.dumps(masks), architecture=json.dumps(arch),
                dtypes=json.dumps(sorted({str(v.dtype).replace('torch.', '') for v in state.values()})))
    if model_name:
        import open_clip

        from .openclip import register_model_configs
        register_model_configs()
        model = open_clip.create_model(model_name, pretrained=None, force_quick_gelu=True)
        model.load_state_dict(state, strict=True)  # raises with the missing/unexpected keys
        meta['checked_against'] = f'open_clip {model_name} (quick_gelu=True), strict'
    write_safetensors(state, dst, meta)
    return meta
