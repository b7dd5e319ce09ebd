"""``TDA``: the training-free dynamic adapter (Karmanov et al., CVPR 2024; official code kdiAAA/TDA).

An *online* method: the prediction of a test image depends on the images before it in the stream, through two
class-wise caches of image features carried across the stream (:mod:`promptsync.tta.memory`). Per test image, in
the official order (``tda_runner.run_test_tda``, ``utils.get_clip_logits``):

1. views -> CLIP logits ``z_v = s * f_v W^T`` of every view; the confident views ``S`` (TDA: the ``int(0.1 V)``
   lowest-entropy views when ``V > 1``; all of one view) give the image's feature ``f = mean_S f_v`` (not
   re-normalised), its zero-shot logits ``z = mean_S z_v``, its entropy ``H`` (of the mean probability, nats), its
   class probabilities ``p = mean_S softmax(z_v)`` and its pseudo-label ``y = argmax z``;
2. the positive cache of class ``y`` is offered ``(f, H)`` (up to ``shot_capacity`` lowest-entropy items per class);
3. when ``lower < H / log2(C) < upper`` (the official normalisation: an entropy in nats over ``log2 C``) the negative
   cache of class ``y`` is offered ``(f, H, mask(p))`` with ``mask(p)_c = [lower < p_c < upper]``;
4. the prediction uses the caches *after* that update (the image may meet itself in the cache)::

       logits = z + a+ * exp(-b+ (1 - f K+^T)) L+  -  a- * exp(-b- (1 - f K-^T)) M-

   ``K+/K-`` the cached features, ``L+`` their one-hot pseudo-labels, ``M-`` the negative masks.

Training-free: nothing is optimised; text features are computed once. The samples of a loaded batch are processed
one after another (each with its own forward), so ``data.batch_size`` changes nothing.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Any, Mapping

import torch

from promptsync.errors import ConfigError, ProvenanceError
from promptsync.losses.entropy import marginal_entropy
from promptsync.registry import TTA_METHODS, VIEW_SELECTORS
from promptsync.tta.context import SampleResult
from promptsync.tta.memory import ClassPriorityQueue, NegativeCache
from promptsync.utils.config import flag

from .base import PerSampleMethod

#: kdiAAA/TDA configs/imagenet.yaml (the paper's ImageNet values; every dataset yaml shares the negative section)
POSITIVE_DEFAULTS = dict(enabled=True, shot_capacity=3, alpha=2.0, beta=5.0)
NEGATIVE_DEFAULTS = dict(enabled=True, shot_capacity=2, alpha=0.117, beta=1.0, entropy_threshold=(0.2, 0.5),
                         mask_threshold=(0.03, 1.0))


@dataclass
class SampleReading:
    """What the zero-shot pass says about one test image (step 1 of the module docstring)."""
    feature: torch.Tensor        # [E] mean feature of the confident views (not re-normalised)
    clip_logits: torch.Tensor    # [C] mean logits of the confident views
    entropy: torch.Tensor        # () entropy of the confident views' mean probability, nats
    probs: torch.Tensor          # [C] mean probability of the confident views
    pseudo_label: int            # argmax of clip_logits


def official_normalised_entropy(entropy_nats: float, num_classes: int) -> float:
    """TDA's ``get_entropy``: the entropy in nats divided by ``log2(C)`` (not ``ln C``; so 0..ln 2, not 0..1)."""
    return float(entropy_nats) / math.log2(num_classes)


@TTA_METHODS.register_module()
class TDA(PerSampleMethod):
    """Args:
        positive: ``dict(enabled, shot_capacity, alpha, beta)`` of the positive cache (keys as in the official
            yaml; missing keys take the ImageNet yaml's values 3 / 2.0 / 5.0).
        negative: ``dict(enabled, shot_capacity, alpha, beta, entropy_threshold=(lower, upper),
            mask_threshold=(lower, upper))`` of the negative cache (official: 2, 0.117, 1.0, (0.2, 0.5),
            (0.03, 1.0) for every dataset).
        selection: the ``VIEW_SELECTORS`` config of the confident views (official: 10% lowest entropy).
    """

    stateful = True

    def __init__(self, model, positive: Mapping[str, Any] | None = None, negative: Mapping[str, Any] | None = None,
                 selection: Mapping[str, Any] | None = None, hooks=None, seed: int = 0, resources=None):
        super().__init__(model, hooks, seed, resources)
        self.positive = _cache_config(positive, POSITIVE_DEFAULTS, 'tta.positive')
        self.negative = _cache_config(negative, NEGATIVE_DEFAULTS, 'tta.negative')
        self.selector = VIEW_SELECTORS.build(dict(selection or dict(type='ConfidenceSelection', ratio=0.1)))
        with torch.no_grad():
            self.text_features = model.text_features()
        self.num_classes, width = self.text_features.shape
        if self.num_classes < 2:
            raise ConfigError(f'TDA needs at least 2 classes, got {self.num_classes}', where='data.dataset')
        self.pos_cache = (ClassPriorityQueue(self.num_classes, self.positive['shot_capacity'], width,
                                             device=self.device) if self.positive['enabled'] else None)
        self.neg_cache = (NegativeCache(self.num_classes, self.negative['shot_capacity'], width,
                                        self.negative['entropy_threshold'], self.negative['mask_threshold'],
                                        device=self.device) if self.negative['enabled'] else None)
        self.samples_seen = 0

    # ------------------------------------------------------------------ one sample
    def read_sample(self, image_features: torch.Tensor, logits: torch.Tensor,
                    selected: torch.Tensor) -> SampleReading:
        """Step 1: average the confident views (``get_clip_logits``)."""
        chosen = logits[selected].float()
        clip_logits = chosen.mean(dim=0)
        return SampleReading(feature=image_features[selected].float().mean(dim=0), clip_logits=clip_logits,
                             entropy=marginal_entropy(chosen), probs=chosen.softmax(dim=-1).mean(dim=0),
                             pseudo_label=int(clip_logits.argmax()))

    def update_caches(self, reading: SampleReading) -> None:
        """Steps 2-3: offer the image to the positive cache, and to the negative one inside its entropy window."""
        y = reading.pseudo_label
        if self.pos_cache is not None:
            self.pos_cache.push(y, reading.feature, reading.entropy)
        if self.neg_cache is not None and self.neg_cache.admits(
                official_normalised_entropy(reading.entropy, self.num_classes)):
            self.neg_cache.push_probs(y, reading.feature, reading.entropy, reading.probs)

    def cache_logits(self, feature: torch.Tensor) -> torch.Tensor:
        """Step 4's correction ``[C]`` added to the zero-shot logits (zeros while both caches are empty)."""
        out = torch.zeros(self.num_classes, device=feature.device)
        if self.pos_cache is not None and len(self.pos_cache):
            out = out + self.pos_cache.one_hot_logits(feature, self.positive['alpha'], self.positive['beta'])
        if self.neg_cache is not None and len(self.neg_cache):
            out = out - self.neg_cache.logits(feature, self.negative['alpha'], self.negative['beta'])
        return out

    def process_sample(self, views: torch.Tensor, label: int, index: int, path: str) -> SampleResult:
        ctx = self.begin_sample(views, label, index, self.text_features)
        with torch.no_grad():
            ctx.selected = self.selector(ctx.logits)
            self.hooks.call('after_selection', ctx)
            reading = self.read_sample(ctx.image_features, ctx.logits, ctx.selected)
            self.update_caches(reading)                 # official order: update, then predict
            logits = reading.clip_logits + self.cache_logits(reading.feature)
        self.samples_seen += 1
        result = SampleResult(index=index, label=label, logits=logits.cpu(), path=path)
        self.hooks.call('after_predict', ctx, result)
        self.hooks.call('after_sample', ctx, result)
        return result

    # ------------------------------------------------------------------ state
    def _caches(self) -> dict[str, ClassPriorityQueue]:
        return {name: cache for name, cache in (('positive', self.pos_cache), ('negative', self.neg_cache))
                if cache is not None}

    def state_dict(self) -> dict[str, torch.Tensor]:
        state = {'samples_seen': torch.tensor(self.samples_seen, dtype=torch.int64)}
        for name, cache in self._caches().items():
            state.update({f'{name}.{k}': v for k, v in cache.state_dict().items()})
        return state

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        expected = set(self.state_dict())
        if set(state) != expected:
            raise ProvenanceError(
                f'the saved TDA state holds {sorted(state)}, this TDA expects {sorted(expected)} (another '
                'tta.positive/negative.enabled)', where='method state', fix='resume with the config of the saved run')
        try:
            for name, cache in self._caches().items():
                cache.load_state_dict({k[len(name) + 1:]: v for k, v in state.items() if k.startswith(name + '.')})
        except ValueError as err:
            raise ProvenanceError(
                f'the saved TDA state does not fit this run: {err}', where='method state',
                fix='resume with the config (model, classes, shot_capacity) of the saved run') from err
        self.samples_seen = int(state['samples_seen'])

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(samples=self.samples_seen)
        for name, cache in self._caches().items():
            out[name] = cache.stats()
        if self.neg_cache is not None:
            admitted = sum(out['negative'][k] for k in ('added', 'replaced', 'rejected'))
            out['negative'].update(admitted=admitted, outside_entropy_window=self.samples_seen - admitted)
        return out


def _cache_config(given: Mapping[str, Any] | None, defaults: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The defaults overridden by ``given``, every value checked (an unknown key or a bad value: ConfigError)."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise ConfigError(f'{where} has unknown keys {unknown}', where=where, fix=f'use only {sorted(defaults)}')
    cfg = {**defaults, **given}
    cfg['enabled'] = flag(cfg['enabled'], f'{where}.enabled')
    capacity = cfg['shot_capacity']
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise ConfigError(f'{where}.shot_capacity must be an integer >= 1, got {capacity!r}',
                          where=f'{where}.shot_capacity')
    for key in ('alpha', 'beta'):
        value = cfg[key]
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0:
            raise ConfigError(f'{where}.{key} must be a finite number >= 0, got {value!r}', where=f'{where}.{key}')
        cfg[key] = float(value)
    for key in ('entropy_threshold', 'mask_threshold'):
        if key not in defaults:
            continue
        window = cfg[key]
        if (not isinstance(window, (list, tuple)) or len(window) != 2
                or not all(isinstance(x, Real) and not isinstance(x, bool) for x in window)
                or not window[0] < window[1]):
            raise ConfigError(f'{where}.{key} must be (lower, upper) with lower < upper, got {window!r}',
                              where=f'{where}.{key}', fix=f'e.g. {key}={tuple(defaults[key])}')
        cfg[key] = (float(window[0]), float(window[1]))
    return cfg
