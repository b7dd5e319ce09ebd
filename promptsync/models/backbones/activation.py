"""Which activation a backbone built from a local checkpoint file uses, and where that was stated.

OpenAI's CLIP weights were trained with QuickGELU (``x * sigmoid(1.702 x)``); open_clip's plain model names
(``ViT-B-16``) build ``nn.GELU``. A checkpoint file does not say which it needs, and the wrong one runs without an
error: for ViT-B/16 with OpenAI weights the logits move by ~4e-2 and TPT's update direction changes. So the activation
of a local file must be *stated*, by one of (first that applies):

1. the backbone argument ``quick_gelu=True|False`` (overrides the model config in both directions);
2. the file's safetensors metadata ``quick_gelu`` (written by ``tools/convert_checkpoint.py --openai-jit``);
   a model config that states the opposite is a :class:`ConfigError` (two statements disagree);
3. the model config: a ``*-quickgelu`` name or an explicit ``"quick_gelu"`` key in the model json.

Otherwise the model's own activation is used and a warning (once per file) says so, with how to state it.
"""
from __future__ import annotations

from pathlib import Path

from promptsync.errors import ConfigError
from promptsync.utils.files import read_safetensors_metadata
from promptsync.utils.logging import get_logger

logger = get_logger('backbone')
LOGIT_SHIFT = '~4e-2'  # ViT-B/16, OpenAI weights: logits with GELU vs QuickGELU (the figure)
_WARNED: set[str] = set()


def _name(quick: bool) -> str:
    return 'QuickGELU' if quick else 'GELU (nn.GELU)'


def file_statement(path: Path, model_name: str = '') -> bool | None:
    """The ``quick_gelu`` a safetensors file's metadata states (None: not a safetensors file / not stated)."""
    if path.suffix != '.safetensors' or not path.is_file():
        return None
    value = read_safetensors_metadata(path, f"open_clip '{model_name}' checkpoint", fix=(
        "delete it and download or save it again, or pass a pretrained tag such as 'openai'")).get('quick_gelu')
    if value is None:
        return None
    if value.lower() not in ('true', 'false'):
        raise ConfigError(f"{path}: metadata quick_gelu={value!r} is neither 'true' nor 'false'",
                          where='model.backbone.pretrained', fix='re-convert the checkpoint with tools/convert_checkpoint.py')
    return value.lower() == 'true'


def config_statement(model_cfg: dict, model_name: str) -> bool | None:
    """What the model config states: the json's explicit ``quick_gelu`` key, or a ``*-quickgelu`` name."""
    if 'quick_gelu' in model_cfg:
        return bool(model_cfg['quick_gelu'])
    return True if model_name.endswith('-quickgelu') else None


def resolve_activation(model_cfg: dict, model_name: str, path: Path, model_kwargs: dict,
                       forced: bool = False) -> dict:
    """``model_kwargs`` with ``quick_gelu`` set where the file states it; warns when nothing states it."""
    from .openai_jit import is_torchscript_archive
    if not path.is_file() or is_torchscript_archive(path):
        return model_kwargs  # missing: refused when the model is built; TorchScript: refused with the command
    explicit = model_kwargs.get('quick_gelu')
    in_file = file_statement(path, model_name)
    in_cfg = True if forced else config_statement(model_cfg, model_name)
    if explicit is not None:
        if in_file is not None and in_file != bool(explicit):
            logger.warning('%s states quick_gelu=%s in its metadata; model.backbone.quick_gelu=%s overrides it '
                           '(%s)', path, in_file, explicit, _name(bool(explicit)))
        return model_kwargs
    if in_file is not None:
        if in_cfg is not None and in_cfg != in_file:
            raise ConfigError(
                f"{path} states quick_gelu={in_file} in its metadata but model '{model_name}' states quick_gelu={in_cfg}",
                where='model.backbone', fix=f'use the model without the -quickgelu suffix / the matching model json, '
                                            f'or set model.backbone.quick_gelu={in_file} (or {in_cfg}) explicitly')
        return dict(model_kwargs, quick_gelu=in_file)
    if in_cfg is None:
        key = str(path.resolve())
        if key not in _WARNED:
            _WARNED.add(key)
            logger.warning(
                "backbone checkpoint %s does not state its activation, so model '%s' builds its default, %s. "
                'OpenAI CLIP weights need QuickGELU; with the wrong activation the logits differ by %s (ViT-B/16) and '
                "TPT's update direction changes. State it: model.backbone.quick_gelu=True (OpenAI weights) or False "
                "(GELU-trained weights), or a '-quickgelu' model name / a model json with \"quick_gelu\", or convert "
                'an OpenAI archive with tools/convert_checkpoint.py --openai-jit (its metadata states it)',
                path, model_name, _name(bool(model_cfg.get('quick_gelu', False))), LOGIT_SHIFT)
    return model_kwargs
