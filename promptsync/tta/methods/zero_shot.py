"""``ZeroShot``: predict with the current prompts, no adaptation.

Zero-shot CLIP with ``TemplatePrompts`` (one template or an ensemble), or a trained prompt learner
(CoOp/MaPLe checkpoint) evaluated as is. Text features are computed once; images run batched. An image-conditioned
learner (CoCoOp) has no text features of its own: each image's class prompts are encoded with it (``model(images)``,
``B * C`` text sequences per batch).
"""
from __future__ import annotations

import torch

from promptsync.registry import TTA_METHODS
from promptsync.tta.context import SampleResult, TTAContext
from promptsync.utils.logging import get_logger

from .base import TTAMethod

logger = get_logger('tta')


@TTA_METHODS.register_module()
class ZeroShot(TTAMethod):

    def __init__(self, model, hooks=None, seed: int = 0, resources=None):
        super().__init__(model, hooks, seed, resources)
        self.conditioned = model.prompt_learner.conditions_on_image
        with torch.no_grad():
            self.text_features = None if self.conditioned else model.text_features()
        self._warned = False

    def process_batch(self, batch) -> list[SampleResult]:
        views, labels, indices, paths = self.unpack(batch)
        if views.shape[1] > 1 and not self._warned:
            logger.warning('ZeroShot predicts on view 0 only; %d extra views per sample are generated for '
                           "nothing (use tta.views=dict(type='OriginalView'))", views.shape[1] - 1)
            self._warned = True
        images = views[:, 0].to(self.device)
        with torch.no_grad():
            if self.conditioned:
                logits = self.model(images).cpu()
            else:
                logits = self.model.logits(self.model.image_features(images), self.text_features).cpu()
        results = []
        for b, (label, index, path) in enumerate(zip(labels, indices, paths)):
            ctx = TTAContext(index=index, label=label, views=views[b], model=self.model, logits=logits[b:b + 1])
            self.hooks.call('before_sample', ctx)
            result = SampleResult(index=index, label=label, logits=logits[b], path=path)
            self.hooks.call('after_predict', ctx, result)
            self.hooks.call('after_sample', ctx, result)
            results.append(result)
        return results
