"""Every registry of the toolbox, and nothing else.

All registries are mmengine ``Registry`` objects with ``scope='promptsync'``. Where mmengine has a root registry
of the same kind, ours is its child (``parent=``), so a name that is not ours falls back to mmengine's: the
torch optimizers come from mmengine's ``OPTIMIZERS`` (we register none), and a loop or hook of mmengine is found
by our ``LOOPS``/``HOOKS``. mmengine allows one child per scope under a root, so the kinds it has no root for
(prompt learners, TTA methods, losses, trainers, view selectors, reset policies, update schedules) are registries
of their own in the same scope, as mmpretrain does for its domain registries.

Each registry names the package modules that hold its members (``locations``), so a config can say
``type='MarginalEntropyLoss'`` without importing any file: mmengine imports the locations on the first lookup.
User modules named in a config's ``custom_imports`` register into the same registries.
:func:`register_all_modules` imports everything and sets the default scope (configs say
``default_scope = 'promptsync'``).

Unknown types and unknown arguments raise :class:`~promptsync.errors.ConfigError` naming the closest match.
"""
from __future__ import annotations

import difflib
import inspect
import re
from typing import Any

import mmengine.optim  # noqa: F401  (registers the torch optimizers in mmengine's OPTIMIZERS)
from mmengine.registry import DATASETS as MMENGINE_DATASETS
from mmengine.registry import HOOKS as MMENGINE_HOOKS
from mmengine.registry import LOOPS as MMENGINE_LOOPS
from mmengine.registry import METRICS as MMENGINE_METRICS
from mmengine.registry import MODELS as MMENGINE_MODELS
from mmengine.registry import OPTIMIZERS as MMENGINE_OPTIMIZERS
from mmengine.registry import PARAM_SCHEDULERS as MMENGINE_PARAM_SCHEDULERS
from mmengine.registry import RUNNERS as MMENGINE_RUNNERS
from mmengine.registry import TRANSFORMS as MMENGINE_TRANSFORMS
from mmengine.registry import Registry, build_from_cfg
from mmengine.registry import init_default_scope as _init_default_scope

from promptsync.errors import ArgumentError, ConfigError

__all__ = [
    'BACKBONES', 'PROMPT_LEARNERS', 'TTA_METHODS', 'HOOKS', 'TTA_HOOKS', 'LOSSES', 'TRAINERS', 'DATASETS',
    'TRANSFORMS', 'METRICS', 'VIEW_SELECTORS', 'OPTIMIZERS', 'RESET_POLICIES', 'UPDATE_SCHEDULES', 'LOOPS',
    'RUNNERS', 'PARAM_SCHEDULERS', 'ALL_REGISTRIES', 'MMENGINE_BACKED', 'SCOPE', 'close_matches', 'registries_of',
    'register_all_modules', 'module_arguments', 'registered_names',
]

SCOPE = 'promptsync'


def registered_names(registry: Registry) -> list[str]:
    """Names a registry can build: its own and its ancestors' (mmengine's torch optimizers, loops, hooks)."""
    registry.import_from_location()
    names, node = set(), registry
    while node is not None:
        names.update(node.module_dict)
        node = node.parent
    return sorted(names)


def close_matches(name: str, registry: Registry, n: int = 5, candidates: list[str] | None = None) -> list[str]:
    """Registered names (or ``candidates``) closest to ``name`` (case-insensitive), best first."""
    names = candidates if candidates is not None else registered_names(registry)
    lowered = {k.lower(): k for k in names}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    # substring hits catch e.g. 'Entropy' -> 'MarginalEntropyLoss'
    hits += [k.lower() for k in names if name.lower() in k.lower() and k.lower() not in hits]
    return [lowered[h] for h in hits[:n]]


def module_arguments(obj: Any) -> tuple[list[str], bool]:
    """``(argument names, accepts **kwargs)`` of a class's constructor or a function.

    A class that defines no constructor of its own below ``object`` / ``torch.nn.Module`` takes no arguments
    (their ``*args, **kwargs`` would otherwise accept any key).
    """
    if inspect.isclass(obj):
        import torch.nn as nn
        owner = next((k for k in obj.__mro__ if '__init__' in vars(k)), object)
        if owner in (object, nn.Module):
            return [], False
    target = obj.__init__ if inspect.isclass(obj) else obj
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return [], True
    names = [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name != 'self']
    return names, any(p.kind == p.VAR_KEYWORD for p in params)


def unknown_argument_error(registry: Registry, type_name: str, obj: Any, key: str,
                           where: str | None = None) -> ArgumentError:
    """The error for ``key`` passed to ``type_name``, naming the closest valid argument."""
    names, _ = module_arguments(obj)
    near = difflib.get_close_matches(key, names, n=3, cutoff=0.5)
    hint = f"did you mean '{near[0]}'? " if near else ''
    return ArgumentError(f"{registry.name} type '{type_name}' has no argument '{key}'", where=where,
                         fix=f"{hint}its arguments: {', '.join(names) or '(none)'}")


_UNEXPECTED = re.compile(r"unexpected keyword argument '([^']+)'")


def _build_with_suggestions(cfg: Any, registry: Registry, default_args: Any = None) -> Any:
    """mmengine's ``build_from_cfg`` with actionable errors.

    * an unknown ``type`` lists the close matches and every registered name;
    * an unknown argument names the closest valid one;
    * any other constructor ``TypeError`` says which registry/type failed.
    """
    obj_type = cfg.get('type') if isinstance(cfg, dict) else None
    if obj_type is None and default_args is not None:
        obj_type = default_args.get('type')
    if isinstance(obj_type, str) and '.' not in obj_type and registry.get(obj_type) is None:
        sugg = close_matches(obj_type, registry)
        raise ConfigError(
            f"'{obj_type}' is not in the promptsync '{registry.name}' registry",
            fix=(f"Did you mean: {', '.join(sugg)}? " if sugg else '') +
                f"Registered: {', '.join(registered_names(registry)) or '(none)'}. If it is your own module, list it in the "
                "config's custom_imports=dict(imports=['your.module']).")
    try:
        return build_from_cfg(cfg, registry, default_args)
    except TypeError as err:
        if isinstance(err, ConfigError):  # a module built inside this one already said what is wrong
            raise
        name = obj_type if isinstance(obj_type, str) else getattr(obj_type, '__name__', str(obj_type))
        obj = registry.get(obj_type) if isinstance(obj_type, str) else obj_type
        bad = _UNEXPECTED.search(str(err))
        if bad and obj is not None and bad.group(1) in (cfg or {}):
            raise unknown_argument_error(registry, name, obj, bad.group(1)) from err
        raise TypeError(f"building {registry.name} type '{name}' failed: {err}") from err


def _registry(name: str, *locations: str, parent: Registry | None = None) -> Registry:
    return Registry(name, build_func=_build_with_suggestions, parent=parent, scope=SCOPE, locations=list(locations))


# children of mmengine's root registries
BACKBONES = _registry('backbone', 'promptsync.models.backbones', parent=MMENGINE_MODELS)
DATASETS = _registry('dataset', 'promptsync.datasets', 'promptsync.benchmarks', parent=MMENGINE_DATASETS)
TRANSFORMS = _registry('transform', 'promptsync.tta.views', parent=MMENGINE_TRANSFORMS)
METRICS = _registry('metric', 'promptsync.evaluation', parent=MMENGINE_METRICS)
OPTIMIZERS = _registry('optimizer', parent=MMENGINE_OPTIMIZERS)  # torch's optimizers, through mmengine
PARAM_SCHEDULERS = _registry('parameter scheduler', 'promptsync.training.schedule', parent=MMENGINE_PARAM_SCHEDULERS)
HOOKS = _registry('hook', 'promptsync.hooks', parent=MMENGINE_HOOKS)
LOOPS = _registry('loop', 'promptsync.engine.loops', parent=MMENGINE_LOOPS)
RUNNERS = _registry('runner', 'promptsync.engine.runner', parent=MMENGINE_RUNNERS)
# domain registries (no mmengine root of their kind)
PROMPT_LEARNERS = _registry('prompt learner', 'promptsync.models.prompt_learners')
TTA_METHODS = _registry('tta method', 'promptsync.tta.methods')
VIEW_SELECTORS = _registry('view selector', 'promptsync.tta.selection')
RESET_POLICIES = _registry('reset policy', 'promptsync.tta.reset')
UPDATE_SCHEDULES = _registry('update schedule', 'promptsync.tta.update_schedules')
LOSSES = _registry('loss', 'promptsync.losses')
TRAINERS = _registry('trainer', 'promptsync.training')
#: the hooks of every loop, TTA stages included (one family); the old name stays
TTA_HOOKS = HOOKS

#: the registries promptsync registers into (``TTA_HOOKS`` is ``HOOKS``)
ALL_REGISTRIES = dict(
    BACKBONES=BACKBONES, PROMPT_LEARNERS=PROMPT_LEARNERS, TTA_METHODS=TTA_METHODS, HOOKS=HOOKS, TTA_HOOKS=TTA_HOOKS,
    VIEW_SELECTORS=VIEW_SELECTORS, RESET_POLICIES=RESET_POLICIES, UPDATE_SCHEDULES=UPDATE_SCHEDULES,
    LOSSES=LOSSES, TRAINERS=TRAINERS, DATASETS=DATASETS, TRANSFORMS=TRANSFORMS, METRICS=METRICS, LOOPS=LOOPS,
    RUNNERS=RUNNERS, PARAM_SCHEDULERS=PARAM_SCHEDULERS,
)
#: registries whose members all come from mmengine (its torch optimizers)
MMENGINE_BACKED = dict(OPTIMIZERS=OPTIMIZERS)


def registries_of(name: str) -> list[str]:
    """Names of the registries that can build ``name`` (after importing their locations): ours, and the
    mmengine-backed ones (e.g. ``'AdamW'`` -> ``['OPTIMIZERS']``)."""
    out = []
    for reg_name, reg in {**ALL_REGISTRIES, **MMENGINE_BACKED}.items():
        reg.import_from_location()
        if name in reg.module_dict or (reg_name in MMENGINE_BACKED and reg.get(name) is not None):
            out.append(reg_name)
    return out


def register_all_modules(init_default_scope: bool = True) -> None:
    """Import every module that registers something, and make ``promptsync`` the default scope."""
    for reg in ALL_REGISTRIES.values():
        reg.import_from_location()
    if init_default_scope:
        _init_default_scope(SCOPE)
