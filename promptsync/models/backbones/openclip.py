"""``OpenCLIP``: a frozen open_clip model that encodes text and images with prompts.

The backbone builds any open_clip model (a pretrained tag *or* a local checkpoint file), freezes it, and
runs open_clip's own modules block by block so that prompt learners can inject tokens per layer
(see :mod:`.prompted_forward`). Per-layer tokens are observed with forward hooks (:mod:`.taps`).
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import torch
from torch import nn

from promptsync.errors import ConfigError
from promptsync.registry import BACKBONES
from promptsync.utils.config import flag
from promptsync.utils.files import load_torch_file, read_safetensors_metadata, require_file
from promptsync.utils.logging import get_logger

from .activation import resolve_activation
from .openai_jit import conversion_command, is_torchscript_archive
from .prompted_forward import encode_image_prompted, encode_text_prompted
from .taps import LayerTaps

logger = get_logger('backbone')

PRECISIONS = ('fp32', 'amp', 'amp_bf16', 'fp16', 'bf16')
_PACKAGE_MODEL_CONFIGS = Path(__file__).parent / 'model_configs'


def _import_open_clip():
    import open_clip  # deferred: importing open_clip pulls timm and takes ~2 s
    return open_clip


def register_model_configs(path: str | os.PathLike | None = None) -> None:
    """Make open_clip aware of extra model json files (the package's own folder, or ``path``)."""
    open_clip = _import_open_clip()
    target = Path(path) if path is not None else _PACKAGE_MODEL_CONFIGS
    if not target.exists():
        raise FileNotFoundError(f'open_clip model config {target} does not exist')
    open_clip.add_model_config(target)


def _looks_like_path(value: str) -> bool:
    return os.sep in value or '/' in value or value.endswith(('.pt', '.pth', '.bin', '.safetensors'))


def _check_readable(path: Path, model_name: str) -> None:
    """Raise a CorruptFileError naming ``path`` if the file itself cannot be read the way open_clip reads it."""
    what, fix = f"open_clip '{model_name}' checkpoint", (
        "delete it and download or save it again, or pass a pretrained tag such as 'openai'")
    if str(path).endswith('.safetensors'):  # open_clip's own test: safetensors, else torch.load
        read_safetensors_metadata(path, what, fix)  # checks the header against the file size
    else:
        load_torch_file(path, what, fix)


@BACKBONES.register_module()
class OpenCLIP(nn.Module):
    """Frozen open_clip CLIP with prompt injection and layer taps.

    Args:
        model_name: any ``open_clip.list_models()`` name (use ``ViT-B-16-quickgelu`` for OpenAI weights)
            or a name defined by ``model_config``.
        pretrained: an open_clip pretrained tag (``'openai'``), a local checkpoint file
            (``.bin``/``.pt``/``.safetensors``, loaded with ``weights_only=True``), or ``None`` for random
            weights (tests only).
        precision: ``fp32`` | ``amp`` (fp32 weights, fp16 autocast on CUDA; plain fp32 on CPU) |
            ``amp_bf16`` (bf16 autocast) | ``fp16`` | ``bf16`` (weights cast by open_clip).
        model_config: path to an extra open_clip model json (its file stem is the model name).
        cache_dir: where open_clip caches downloaded weights.
        force_quick_gelu: ``True`` = build QuickGELU (open_clip's flag; ``None``/``False`` = follow the model config
            and the pretrained tag).
        quick_gelu: the activation, stated: ``True`` = QuickGELU (OpenAI weights), ``False`` = GELU; overrides the
            model config in both directions. A local checkpoint file whose activation is stated nowhere (not here,
            not by a ``*-quickgelu`` name or the model json's ``quick_gelu`` key, not by the safetensors metadata our
            converters write) warns: the wrong activation changes the logits (see :func:`.activation.resolve`).
        model_kwargs: overrides of top-level model-config keys, passed to ``open_clip.create_model``.
        truncate_text: run the text encoder only up to the longest prompt's end-of-text token (exact with a
            causal mask; ``False`` = the full context, the reference path).
        text_grad_checkpointing: recompute the text blocks' activations in the backward pass instead of keeping
            them (less memory for many classes, ~1/3 more text compute; same gradients).
    """

    def __init__(self, model_name: str, pretrained: str | None = None, precision: str = 'amp',
                 device: str | torch.device = 'cpu', model_config: str | None = None,
                 cache_dir: str | None = None, force_quick_gelu: bool | None = None,
                 model_kwargs: Mapping[str, Any] | None = None, truncate_text: bool = True,
                 text_grad_checkpointing: bool = False, quick_gelu: bool | None = None):
        super().__init__()
        if precision not in PRECISIONS:
            raise ValueError(f"precision='{precision}' is not one of {PRECISIONS}")
        open_clip = _import_open_clip()
        register_model_configs()
        if model_config is not None:
            register_model_configs(model_config)
        if model_name not in open_clip.list_models():
            import difflib
            close = difflib.get_close_matches(model_name, open_clip.list_models(), n=5)
            raise ValueError(
                f"open_clip has no model named '{model_name}'. Close names: {close}. "
                "For a custom architecture pass backbone.model_config='path/to/<name>.json'.")
        self.model_name = model_name
        self.pretrained = pretrained
        self.precision = precision
        model_kwargs = dict(model_kwargs or {})
        if quick_gelu is not None:
            model_kwargs['quick_gelu'] = flag(quick_gelu, 'model.backbone.quick_gelu')
        if pretrained and (_looks_like_path(pretrained) or os.path.exists(pretrained)):
            model_kwargs = resolve_activation(open_clip.get_model_config(model_name) or {}, model_name,
                                              Path(pretrained).expanduser(), model_kwargs, bool(force_quick_gelu))
        force = self._resolve_quick_gelu(open_clip, model_name, pretrained, force_quick_gelu)
        oc_precision = precision if precision in ('fp16', 'bf16') else 'fp32'
        self.model = self._create(open_clip, model_name, pretrained, oc_precision, device, cache_dir,
                                  force, model_kwargs)
        if not hasattr(self.model, 'transformer') or not hasattr(self.model, 'token_embedding'):
            raise TypeError(
                f"model '{model_name}' is a {type(self.model).__name__} with a custom/HF text tower; prompted "
                "text encoding needs open_clip's built-in text transformer (the CLIP class).")
        self.model.requires_grad_(False)
        self.model.eval()
        self.truncate_text = flag(truncate_text, 'model.backbone.truncate_text')
        self.model.transformer.grad_checkpointing = flag(text_grad_checkpointing, 'model.backbone.text_grad_checkpointing')
        self.tokenizer = open_clip.get_tokenizer(model_name)
        pp = open_clip.get_model_preprocess_cfg(self.model)
        self.preprocess_cfg = dict(
            size=pp.get('size', 224), mean=tuple(pp.get('mean', (0.48145466, 0.4578275, 0.40821073))),
            std=tuple(pp.get('std', (0.26862954, 0.26130258, 0.27577711))),
            interpolation=pp.get('interpolation', 'bicubic'), resize_mode=pp.get('resize_mode', 'shortest'))
        if precision == 'amp' and torch.device(device).type != 'cuda':
            logger.info("precision='amp' on %s: autocast is off (fp16 autocast needs CUDA); running fp32",
                        torch.device(device).type)

    # ------------------------------------------------------------------ construction
    @staticmethod
    def _resolve_quick_gelu(open_clip, model_name: str, pretrained: str | None,
                            force_quick_gelu: bool | None) -> bool:
        if force_quick_gelu is not None:
            return bool(force_quick_gelu)
        if not pretrained or _looks_like_path(pretrained):
            return False
        tag_cfg = open_clip.get_pretrained_cfg(model_name, pretrained) or {}
        model_cfg = open_clip.get_model_config(model_name) or {}
        if tag_cfg.get('quick_gelu', False) and not model_cfg.get('quick_gelu', False):
            logger.warning("pretrained='%s' was trained with QuickGELU but '%s' builds GELU; forcing QuickGELU "
                           "(use '%s-quickgelu' to silence this)", pretrained, model_name, model_name)
            return True
        return False

    @staticmethod
    def _create(open_clip, model_name: str, pretrained: str | None, precision: str, device, cache_dir,
                quick_gelu: bool, model_kwargs: dict) -> nn.Module:
        kwargs = dict(precision=precision, device=device, cache_dir=cache_dir, force_quick_gelu=quick_gelu,
                      **model_kwargs)
        if pretrained is None:
            logger.warning("backbone '%s' has random weights (pretrained=None)", model_name)
            return open_clip.create_model(model_name, pretrained=None, **kwargs)
        if _looks_like_path(pretrained) or os.path.exists(pretrained):
            path = require_file(pretrained, f"open_clip '{model_name}' checkpoint", fix=(
                "pass an open_clip checkpoint file (.bin/.pt/.safetensors) or a pretrained tag such as 'openai'"))
            if is_torchscript_archive(path):
                raise ConfigError(
                    f"{path} is an OpenAI TorchScript archive (clip.load's download): promptsync loads weights only "
                    "with weights_only=True or safetensors, and loading TorchScript compiles its program",
                    where='model.backbone.pretrained',
                    fix=f'convert it once (it is your trusted download): {conversion_command(path)} and pass the '
                        'result as model.backbone.pretrained (its metadata states QuickGELU)')
            try:
                return open_clip.create_model(model_name, pretrained=str(path), **kwargs)
            except Exception:
                _check_readable(path, model_name)  # a torn file: say which; otherwise (e.g. wrong keys) re-raise
                raise
        tags = open_clip.list_pretrained_tags_by_model(model_name)
        if pretrained not in tags:
            raise ValueError(f"'{pretrained}' is not a pretrained tag of open_clip model '{model_name}' "
                             f"(known tags: {tags}) and is not an existing file.")
        try:
            return open_clip.create_model(model_name, pretrained=pretrained, **kwargs)
        except RuntimeError as err:
            raise RuntimeError(
                f"could not load pretrained weights '{pretrained}' for open_clip model '{model_name}': {err}\n"
                "The weights are downloaded from the Hugging Face hub / OpenAI on first use; this machine could "
                "not fetch them (offline, or HF_HUB_OFFLINE=1). Either download them once elsewhere, e.g.\n"
                f"  python -c \"import open_clip; open_clip.create_model('{model_name}', pretrained='{pretrained}',"
                " cache_dir='CACHE')\"\n"
                "and pass backbone.cache_dir=CACHE, or pass a local checkpoint file:\n"
                "  --cfg-options model.backbone.pretrained=/path/to/open_clip_pytorch_model.bin"
            ) from err

    def train(self, mode: bool = True) -> 'OpenCLIP':
        """The frozen CLIP always stays in eval mode (no dropout, fixed norms)."""
        super().train(mode)
        self.model.eval()
        return self

    # ------------------------------------------------------------------ properties read from the model
    @property
    def visual(self) -> nn.Module:
        return self.model.visual

    @property
    def text_width(self) -> int:
        return int(self.model.token_embedding.weight.shape[1])

    @property
    def vision_width(self) -> int:
        if not self.supports_visual_prompts:
            raise AttributeError(f"'{self.model_name}' has a {type(self.visual).__name__} image tower, "
                                 'which has no token width')
        return int(self.visual.class_embedding.shape[0])

    @property
    def embed_dim(self) -> int:
        return int(self.visual.output_dim)

    @property
    def n_text_layers(self) -> int:
        return len(self.model.transformer.resblocks)

    @property
    def n_vision_layers(self) -> int:
        if not self.supports_visual_prompts:
            raise AttributeError(f"'{self.model_name}' has no transformer image tower")
        return len(self.visual.transformer.resblocks)

    @property
    def context_length(self) -> int:
        return int(self.model.positional_embedding.shape[0])

    @property
    def supports_visual_prompts(self) -> bool:
        """Visual/deep prompts and vision taps need a ViT image tower (not a ModifiedResNet/timm trunk)."""
        return all(hasattr(self.visual, a) for a in ('class_embedding', 'conv1', 'transformer', 'ln_pre'))

    @property
    def device(self) -> torch.device:
        return self.model.token_embedding.weight.device

    @property
    def dtype(self) -> torch.dtype:
        return self.model.transformer.get_cast_dtype()

    def logit_scale(self) -> torch.Tensor:
        return self.model.logit_scale.exp()

    def logit_bias(self) -> torch.Tensor | None:
        return getattr(self.model, 'logit_bias', None)

    # ------------------------------------------------------------------ encoding
    def autocast(self) -> contextlib.AbstractContextManager:
        """Autocast context for the configured precision (a no-op for fp32 / cast weights / amp on CPU)."""
        dev = self.device.type
        if self.precision == 'amp' and dev == 'cuda':
            return torch.autocast('cuda', dtype=torch.float16)
        if self.precision == 'amp_bf16':
            return torch.autocast(dev, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        return self.tokenizer(list(texts)).to(self.device)

    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        """Token embeddings (no positional term), ``[N, L, D_text]``, frozen."""
        return self.model.token_embedding(token_ids.to(self.device)).to(self.dtype)

    def encode_text(self, token_ids: torch.Tensor, embeddings: torch.Tensor | None = None,
                    deep_prompts: Mapping[int, torch.Tensor] | None = None,
                    prompt_positions: torch.Tensor | None = None, normalize: bool = False) -> torch.Tensor:
        """Text features ``[N, E]``; see :func:`.prompted_forward.encode_text_prompted`."""
        return encode_text_prompted(self.model, token_ids.to(self.device), embeddings, deep_prompts,
                                    prompt_positions, normalize, truncate=self.truncate_text)

    def encode_image(self, images: torch.Tensor, shallow_prompts: torch.Tensor | None = None,
                     deep_prompts: Mapping[int, torch.Tensor] | None = None,
                     normalize: bool = False) -> torch.Tensor:
        """Image features ``[B, E]``; see :func:`.prompted_forward.encode_image_prompted`."""
        images = images.to(self.device)
        if shallow_prompts is None and not deep_prompts:
            out = self.visual(images.to(self.dtype))
            out = out[0] if isinstance(out, tuple) else out
            return nn.functional.normalize(out, dim=-1) if normalize else out
        if not self.supports_visual_prompts:
            raise ValueError(f"visual prompts need a ViT image tower; '{self.model_name}' has "
                             f'{type(self.visual).__name__}. Use a text-only prompt learner (CoOp) or a ViT model.')
        return encode_image_prompted(self.visual, images, shallow_prompts, deep_prompts, normalize)

    @contextlib.contextmanager
    def taps(self, branch: str, layers: Sequence[int], point: str = 'input') -> Iterator[LayerTaps]:
        """Record per-layer tokens ``[B, T, D]`` of ``branch`` ('vision' | 'text') while the block is open.

        ``layer l`` with ``point='input'`` is the input of transformer block ``l`` *after* prompt
        injection (PromptAlign's convention: layer 0 = the embeddings after ``ln_pre``). Text taps see the positions the
        encoder runs: with ``truncate_text`` only up to the longest end-of-text token (``truncate_text=False``
        for the full context).
        """
        if branch == 'vision':
            if not self.supports_visual_prompts:
                raise ValueError(f"vision taps need a ViT image tower; '{self.model_name}' has "
                                 f'{type(self.visual).__name__}')
            transformer = self.visual.transformer
        elif branch == 'text':
            transformer = self.model.transformer
        else:
            raise ValueError(f"branch must be 'vision' or 'text', got '{branch}'")
        tap = LayerTaps(transformer.resblocks, layers, point, batch_first=getattr(transformer, 'batch_first', False))
        with tap:
            yield tap
