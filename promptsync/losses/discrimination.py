"""Prototype discrimination (PromptSync): a contrastive (InfoNCE) loss that keeps class probabilities sharp.

The paper's equation is not public; both readings of "prototype discrimination using contrastive learning"
are implemented (``mode``):

* ``'prototype_to_text'`` — the prompted text classifier must recognise the visual class prototypes:
  ``L = -(1/|M|) sum_{c in M} log softmax_j( cos(v_c, t_j) / tau )_c``. It does not depend on the test
  image, so its gradient at the initial prompts can be computed once and reused for every sample
  (``reuse``), which is the "controllable latency" knob.
* ``'sample_to_prototype'`` — the test image's embedding ``z`` (normalised mean over the selected views and
  the original) must be closest to the prototype of its predicted class:
  ``L = -sum_k q_k log softmax_k( cos(z, v_k) / tau )`` with ``q`` = one-hot(argmax p_bar) (``target='hard'``)
  or ``p_bar`` (``'soft'``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from promptsync.registry import LOSSES

from .prototype_base import PrototypeLoss, logger, probability_views

MODES = ('prototype_to_text', 'sample_to_prototype')


@LOSSES.register_module()
class PrototypeDiscriminationLoss(PrototypeLoss):
    """Args:
        mode: 'prototype_to_text' | 'sample_to_prototype' (see the module docstring).
        temperature: ``tau`` (default 0.01 = 1 / CLIP's logit scale).
        text_classes: prototype_to_text over the test classes that have a prototype ('target'), over all proxy
            classes encoded with the current prompts ('proxy'), or 'auto' (target when every test class has a
            prototype of its own, else proxy).
        reuse: compute the prototype_to_text gradient once at the initial prompts and reuse it (exact for the
            first step of an episodic method; a first-order approximation after it). 'auto' = on for 'proxy'.
        sample_prototypes: sample_to_prototype against visual prototypes ('visual'), the test classes' text
            features at the initial prompts ('text'), or 'auto' (visual when every class has one).
        include_original, target: the views and target of sample_to_prototype.
    """

    def __init__(self, prototypes: str | None = None, mode: str = 'prototype_to_text', temperature: float = 0.01,
                 text_classes: str = 'auto', reuse: bool | str = 'auto', sample_prototypes: str = 'auto',
                 include_original: bool = True, target: str = 'hard', label_space: str = 'auto',
                 match_top_m: int = 5, match_temperature: float = 0.01):
        super().__init__(prototypes, (), label_space, match_top_m, match_temperature)
        checks = dict(mode=(mode, MODES), text_classes=(text_classes, ('auto', 'target', 'proxy')),
                      sample_prototypes=(sample_prototypes, ('auto', 'visual', 'text')),
                      target=(target, ('hard', 'soft')), reuse=(reuse, (True, False, 'auto')))
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(f"{name}='{value}' is not one of {allowed}")
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.mode, self.temperature, self.include_original, self.target_kind = mode, temperature, include_original, target
        self.text_classes, self.reuse, self.sample_prototypes = text_classes, reuse, sample_prototypes
        self._cached: tuple[torch.Tensor, list] | None = None

    # ------------------------------------------------------------------ setup
    def setup(self, model, resources=None) -> None:
        self.load_bank(model, resources)
        if self.bank.visual is None:
            raise ValueError(f'{self.bank.metadata.get("file", "the prototype file")} has no visual prototypes')
        self.model = model
        all_matched = bool(self.target.matched.all())
        if self.mode == 'prototype_to_text':
            self.text_classes = self.text_classes if self.text_classes != 'auto' else \
                ('target' if all_matched else 'proxy')
            if self.text_classes == 'proxy':
                valid = (self.bank.counts > 0).nonzero().flatten()
                self.proxy_names = [self.bank.label_space.names[i] for i in valid.tolist()]
                self.proxy_visual = self.bank.visual.float()[valid].to(model.backbone.device)
            elif not bool(self.target.matched.any()):
                raise ValueError("text_classes='target' but no test class has a prototype; use 'proxy' or 'auto'")
            self.reuse = self.reuse if self.reuse != 'auto' else self.text_classes == 'proxy'
            if self.reuse:
                self._cache_gradient()
        else:
            self.sample_prototypes = self.sample_prototypes if self.sample_prototypes != 'auto' else \
                ('visual' if all_matched else 'text')
            if self.sample_prototypes == 'visual':
                self.class_prototypes = self.target.visual[self.target.row_of_class]
            else:
                with torch.no_grad():
                    self.class_prototypes = model.text_features().detach()
            if not model.prompt_learner.has_vision_prompts:
                logger.warning('sample_to_prototype moves only visual prompts; %s has none, so this loss is constant',
                               type(model.prompt_learner).__name__)
        self._summary.update(mode=self.mode, text_classes=self.text_classes, reuse=bool(self.reuse),
                             sample_prototypes=self.sample_prototypes, temperature=self.temperature)

    def _params(self):
        return [p for p in self.model.prompt_learner.parameters() if p.requires_grad]

    @property
    def batch_safe(self) -> bool:
        """Unsafe only for the proxy classes encoded anew at every step (that reads the shared learner)."""
        return not (self.mode == 'prototype_to_text' and self.text_classes == 'proxy' and not self.reuse)

    def views_read(self, ctx) -> torch.Tensor:
        if self.mode == 'sample_to_prototype':
            return probability_views(ctx, self.include_original)
        return ctx.selected.new_zeros(0)  # prototype_to_text reads no view

    def _cache_gradient(self) -> None:
        params = self._params()
        with torch.enable_grad():
            value = self.prototype_to_text(self.model.text_features())
            grads = torch.autograd.grad(value, params, allow_unused=True)
        self._cached = (value.detach(), [g.detach() if g is not None else None for g in grads])

    # ------------------------------------------------------------------ the two readings
    def prototype_to_text(self, text_features: torch.Tensor) -> torch.Tensor:
        if self.text_classes == 'proxy':
            text = self.model.text_features(self.model.prompt_learner.prompts_for(self.proxy_names))
            protos, labels = self.proxy_visual, torch.arange(len(self.proxy_names), device=text.device)
        else:
            labels = self.target.matched.nonzero().flatten()
            protos, text = self.target.visual[self.target.row_of_class[labels]], text_features
        logits = F.normalize(protos, dim=-1) @ F.normalize(text, dim=-1).t() / self.temperature
        return F.cross_entropy(logits, labels)

    def sample_to_prototype(self, ctx) -> torch.Tensor:
        idx = probability_views(ctx, self.include_original)
        z = F.normalize(ctx.image_features[idx].float().mean(dim=0), dim=-1)
        logits = (z @ F.normalize(self.class_prototypes, dim=-1).t() / self.temperature).unsqueeze(0)
        p_bar = ctx.logits[idx].detach().float().softmax(dim=-1).mean(dim=0)
        if self.target_kind == 'hard':
            return F.cross_entropy(logits, p_bar.argmax().unsqueeze(0))
        return -(p_bar * logits.log_softmax(dim=-1)[0]).sum()

    def forward(self, ctx) -> torch.Tensor:
        if self.mode == 'sample_to_prototype':
            return self.sample_to_prototype(ctx)
        if self._cached is None:
            return self.prototype_to_text(ctx.text_features)
        value, grads = self._cached
        params = ctx.prompt_params if ctx.prompt_params is not None else self._params()
        surrogate = sum((g * p).sum() for g, p in zip(grads, params) if g is not None)
        if not torch.is_tensor(surrogate):  # no parameter reaches this loss
            return value
        return surrogate - surrogate.detach() + value
