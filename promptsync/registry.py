"""Every registry of the toolbox, and nothing else.

All registries are mmengine ``Registry`` objects. Each one names the package
modules that hold its members (``locations``), so a config can say
``type='MarginalEntropyLoss'`` without the user importing any file: mmengine
imports the locations on the first lookup. User modules named in a config's
``custom_imports`` register into the same registries.

Unknown types raise a ``KeyError`` that lists the closest registered names.
"""
from __future__ import annotations

import difflib
from typing import Any

from mmengine.registry import Registry, build_from_cfg

__all__ = [
    'BACKBONES', 'PROMPT_LEARNERS', 'TTA_METHODS', 'TTA_HOOKS', 'LOSSES',
    'TRAINERS', 'DATASETS', 'TRANSFORMS', 'METRICS', 'VIEW_SELECTORS',
    'OPTIMIZERS', 'RESET_POLICIES', 'ALL_REGISTRIES', 'close_matches', 'registries_of',
]


def close_matches(name: str, registry: Registry, n: int = 5) -> list[str]:
    """Registered names closest to ``name`` (case-insensitive), best first."""
    registry.import_from_location()
    names = sorted(registry.module_dict)
    lowered = {k.lower(): k for k in names}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    # substring hits catch e.g. 'Entropy' -> 'MarginalEntropyLoss'
    hits += [k.lower() for k in names if name.lower() in k.lower() and k.lower() not in hits]
    return [lowered[h] for h in hits[:n]]


def _build_with_suggestions(cfg: Any, registry: Registry, default_args: Any = None) -> Any:
    """mmengine's ``build_from_cfg`` with actionable errors.

    * an unknown ``type`` lists the close matches and every registered name;
    * a constructor that rejects its arguments says which registry/type failed.
    """
    obj_type = cfg.get('type') if isinstance(cfg, dict) else None
    if obj_type is None and default_args is not None:
        obj_type = default_args.get('type')
    if isinstance(obj_type, str) and '.' not in obj_type:
        registry.import_from_location()
        if registry.get(obj_type) is None:
            sugg = close_matches(obj_type, registry)
            hint = f" Did you mean: {', '.join(sugg)}?" if sugg else ''
            raise KeyError(
                f"'{obj_type}' is not in the promptsync '{registry.name}' registry.{hint} "
                f"Registered: {', '.join(sorted(registry.module_dict)) or '(none)'}. "
                "If it is your own module, list it in the config's "
                "custom_imports=dict(imports=['your.module'])."
            )
    try:
        return build_from_cfg(cfg, registry, default_args)
    except TypeError as err:
        name = obj_type if isinstance(obj_type, str) else getattr(obj_type, '__name__', obj_type)
        raise TypeError(f"building {registry.name} type '{name}' failed: {err}") from err


def _registry(name: str, *locations: str) -> Registry:
    return Registry(name, build_func=_build_with_suggestions, scope='promptsync', locations=list(locations))


BACKBONES = _registry('backbone', 'promptsync.models.backbones')
PROMPT_LEARNERS = _registry('prompt learner', 'promptsync.models.prompt_learners')
TTA_METHODS = _registry('tta method', 'promptsync.tta.methods')
TTA_HOOKS = _registry('tta hook', 'promptsync.tta.hooks')
VIEW_SELECTORS = _registry('view selector', 'promptsync.tta.selection')
RESET_POLICIES = _registry('reset policy', 'promptsync.tta.reset')
OPTIMIZERS = _registry('optimizer', 'promptsync.tta.optimizers')
LOSSES = _registry('loss', 'promptsync.losses')
TRAINERS = _registry('trainer', 'promptsync.engine')
DATASETS = _registry('dataset', 'promptsync.datasets', 'promptsync.benchmarks')
TRANSFORMS = _registry('transform', 'promptsync.tta.views')
METRICS = _registry('metric', 'promptsync.evaluation')

def registries_of(name: str) -> list[str]:
    """Names of the registries in which ``name`` is registered (after importing their locations)."""
    out = []
    for reg_name, reg in ALL_REGISTRIES.items():
        reg.import_from_location()
        if reg.get(name) is not None:
            out.append(reg_name)
    return out


ALL_REGISTRIES = dict(
    BACKBONES=BACKBONES, PROMPT_LEARNERS=PROMPT_LEARNERS, TTA_METHODS=TTA_METHODS,
    TTA_HOOKS=TTA_HOOKS, VIEW_SELECTORS=VIEW_SELECTORS, RESET_POLICIES=RESET_POLICIES,
    OPTIMIZERS=OPTIMIZERS, LOSSES=LOSSES, TRAINERS=TRAINERS, DATASETS=DATASETS,
    TRANSFORMS=TRANSFORMS, METRICS=METRICS,
)
