"""``PromptedCLIP``: backbone + prompt learner -> class logits.

The one place that turns prompts into text/image features and logits, for every method (zero-shot,
TPT, PromptAlign, PromptSync). Template ensembles are averaged here (normalised mean of normalised
features); text encoding can be chunked over classes to bound memory.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from promptsync.datasets.base import LabelSpace
from promptsync.errors import ConfigError
from promptsync.models.prompt_learners.base import PromptLearner, Prompts, TextPrompts
from promptsync.models.prompt_learners.checkpoint import load_prompt_checkpoint
from promptsync.models.prompt_learners.stacking import stack_text_prompts, stack_vision_prompts
from promptsync.registry import BACKBONES, PROMPT_LEARNERS

#: images per encoder pass on a CPU (image_chunk_size='auto'): on two cores a pass of 256 or more 64-view rows runs
#: about half as fast per image as passes of 64 (docs/performance.md)
CPU_IMAGE_CHUNK = 64


def _chunk_text(tp: TextPrompts, start: int, stop: int) -> dict[str, Any]:
    def rows(t):
        return None if t is None else t[start:stop]
    deep = {k: (v[start:stop] if v.dim() == 3 else v) for k, v in tp.deep.items()}
    return dict(token_ids=tp.token_ids[start:stop], embeddings=rows(tp.embeddings), deep_prompts=deep,
                prompt_positions=rows(tp.positions))


class PromptedCLIP(nn.Module):
    """Args:
        backbone: a built backbone (``OpenCLIP``).
        prompt_learner: a built prompt learner bound to ``backbone``.
        text_chunk_size: encode at most this many class prompts at once (``None`` = all).
        image_chunk_size: encode at most this many images (views) at once: ``'auto'`` = 64 on a CPU (larger
            batches run slower per image there) and all at once on a GPU; ``None`` = all; an int.
    """

    def __init__(self, backbone: nn.Module, prompt_learner: PromptLearner, text_chunk_size: int | None = None,
                 image_chunk_size: int | str | None = 'auto'):
        super().__init__()
        if not (image_chunk_size in (None, 'auto') or (isinstance(image_chunk_size, int) and image_chunk_size >= 1)):
            raise ConfigError(f"model.image_chunk_size={image_chunk_size!r} must be 'auto', None or an integer >= 1",
                              where='model.image_chunk_size')
        self.backbone = backbone
        self.prompt_learner = prompt_learner
        self.text_chunk_size = text_chunk_size
        self.image_chunk_size = image_chunk_size
        self.prompt_checkpoint: dict[str, str] | None = None  # metadata of the loaded initial prompts
        self._label_space: LabelSpace | None = None

    @property
    def classnames(self) -> list[str]:
        return self.prompt_learner.classnames

    @property
    def label_space(self) -> LabelSpace:
        """The classes this model predicts (names, and ids such as wnids when the dataset has them)."""
        if self._label_space is not None and list(self._label_space.names) == list(self.classnames):
            return self._label_space
        return LabelSpace(tuple(self.classnames))

    def set_classnames(self, classnames: list[str]) -> None:
        self.prompt_learner.set_classnames(classnames)

    def set_label_space(self, space: LabelSpace) -> None:
        self.prompt_learner.set_classnames(list(space.names))
        self._label_space = space

    def prompts(self) -> Prompts:
        return self.prompt_learner()

    def text_features(self, prompts: Prompts | None = None) -> torch.Tensor:
        """Normalised class text features ``[C, E]`` (templates averaged)."""
        tp = (prompts if prompts is not None else self.prompts()).text
        n = tp.token_ids.shape[0]
        step = self.text_chunk_size or n
        with self.backbone.autocast():
            feats = [self.backbone.encode_text(**_chunk_text(tp, s, min(s + step, n)), normalize=True)
                     for s in range(0, n, step)]
        feats = torch.cat(feats).float()
        if tp.n_templates > 1:
            feats = F.normalize(feats.view(-1, tp.n_templates, feats.shape[-1]).mean(dim=1), dim=-1)
        return feats

    def image_features(self, images: torch.Tensor, prompts: Prompts | None = None,
                       normalize: bool = True) -> torch.Tensor:
        """Normalised image features ``[B, E]`` with the learner's visual prompts (if any); ``normalize=False``: the
        encoder's output as is (what TPT's ``gen_ctx`` feeds CoCoOp's meta-net)."""
        vp = (prompts if prompts is not None else self.prompts()).vision if self.prompt_learner.has_vision_prompts else None
        n = images.shape[0]
        step = self.image_chunk_size if isinstance(self.image_chunk_size, int) else n
        if self.image_chunk_size == 'auto':
            step = n if self.backbone.device.type == 'cuda' else CPU_IMAGE_CHUNK
        step = max(1, min(step, n))

        def rows(t, s, e):
            return t[s:e] if t is not None and t.dim() == 3 else t
        out = []
        with self.backbone.autocast():
            for s in range(0, n, step):
                e = min(s + step, n)
                if vp is None:
                    out.append(self.backbone.encode_image(images[s:e], normalize=normalize))
                else:
                    out.append(self.backbone.encode_image(images[s:e], rows(vp.shallow, s, e),
                                                          {k: rows(v, s, e) for k, v in vp.deep.items()},
                                                          normalize=normalize))
        return (out[0] if len(out) == 1 else torch.cat(out)).float()

    def text_features_of(self, prompts: Sequence[Prompts]) -> torch.Tensor:
        """``[B, C, E]``: the class text features of ``B`` prompt copies, encoded as one batch."""
        feats = self.text_features(Prompts(text=stack_text_prompts([p.text for p in prompts])))
        return feats.view(len(prompts), -1, feats.shape[-1])

    def image_features_of(self, images: Sequence[torch.Tensor], prompts: Sequence[Prompts]) -> list[torch.Tensor]:
        """Image features of each sample's views ``images[b]`` with that sample's prompts, encoded as one batch."""
        rows = [int(x.shape[0]) for x in images]
        vision = None
        if self.prompt_learner.has_vision_prompts:
            vision = stack_vision_prompts([p.vision for p in prompts], rows)
        out = self.image_features(torch.cat(list(images)), Prompts(text=None, vision=vision))
        return list(out.split(rows))

    def conditioned_text_features(self, image_features: torch.Tensor) -> torch.Tensor:
        """``[B, C, E]``: the class text features of each image for an image-conditioned learner (CoCoOp), from the
        normalised image features ``[B, E]``.

        The ``B * C`` sequences are encoded in chunks of ``text_chunk_size`` rows; with a chunk size the prompt
        embeddings are built for ``text_chunk_size // C`` images at a time (at least one), so memory stays bounded.
        """
        learner = self.prompt_learner
        n = image_features.shape[0]
        per_image = len(learner.classnames)
        group = n if not self.text_chunk_size else max(1, self.text_chunk_size // max(per_image, 1))
        out = []
        for s in range(0, n, group):
            feats = self.text_features(learner(image_features=image_features[s:s + group]))
            out.append(feats.view(-1, per_image, feats.shape[-1]))
        return out[0] if len(out) == 1 else torch.cat(out)

    def logits(self, image_features: torch.Tensor, text_features: torch.Tensor) -> torch.Tensor:
        """``logit_scale * cos`` (+ the model's logit bias, if it has one), ``[B, C]``; ``text_features`` is ``[C, E]``
        (shared by the images) or ``[B, C, E]`` (each image its own classes' features: CoCoOp)."""
        scale = self.backbone.logit_scale().float()
        if text_features.dim() == 3:
            out = scale * torch.einsum('be,bce->bc', image_features, text_features)
        else:
            out = scale * image_features @ text_features.t()
        bias = self.backbone.logit_bias()
        return out if bias is None else out + bias.float()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.prompt_learner.conditions_on_image:
            image = self.image_features(images)
            return self.logits(image, self.conditioned_text_features(image))
        prompts = self.prompts()
        return self.logits(self.image_features(images, prompts), self.text_features(prompts))


def build_model(cfg: Mapping[str, Any], classes: list[str] | LabelSpace, device: str | torch.device) -> PromptedCLIP:
    """Build backbone + prompt learner from ``cfg.model`` for a label space (or a list of class names), on
    ``device``."""
    cfg = dict(cfg)
    backbone = BACKBONES.build(dict(cfg.pop('backbone')), default_args=dict(device=str(device)))
    learner_cfg = cfg.pop('prompt_learner', None) or dict(type='TemplatePrompts', templates='single')
    learner = PROMPT_LEARNERS.build(dict(learner_cfg), default_args=dict(backbone=backbone))
    learner.to(backbone.device)
    space = classes if isinstance(classes, LabelSpace) else LabelSpace(tuple(classes))
    unknown = set(cfg) - {'text_chunk_size', 'image_chunk_size', 'prompt_checkpoint'}
    if unknown:
        raise ConfigError(f'unknown model config keys {sorted(unknown)}', where='model',
                          fix='expected backbone, prompt_learner, prompt_checkpoint, text_chunk_size, image_chunk_size')
    model = PromptedCLIP(backbone, learner, text_chunk_size=cfg.get('text_chunk_size'),
                         image_chunk_size=cfg.get('image_chunk_size', 'auto'))
    model.set_label_space(space)
    if cfg.get('prompt_checkpoint'):
        model.prompt_checkpoint = load_prompt_checkpoint(learner, cfg['prompt_checkpoint'])
    return model


def build_model_for_shapes(model_cfg: Mapping[str, Any], num_classes: int = 1,
                           device: str | torch.device = 'cpu') -> PromptedCLIP:
    """The config's model without its prompt checkpoint, over ``num_classes`` stand-in class names, for checks of
    tensor shapes (a converted checkpoint's keys, the tokens of the prompted encoder): the learnable shapes do not
    depend on the class names, only — for class-specific contexts — on their number."""
    model_cfg = dict(model_cfg)
    model_cfg.pop('prompt_checkpoint', None)
    return build_model(model_cfg, [f'class {i}' for i in range(num_classes)], torch.device(device))
