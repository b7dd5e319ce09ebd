"""Unknown config keys are errors: every key of a resolved config must mean something.

A typo (``data.max_sample``, ``sed``, ``tta.optimizer.lrr``) in a config file or in ``--cfg-options`` would
otherwise be accepted and ignored. :func:`check_config` walks the config: plain sections (``data``, ``model``,
``prototypes``, ...) are checked against the keys the toolbox reads, and every module config (a dict with
``type``) against the constructor arguments of the class it builds. Each unknown key is reported with the
closest valid one, all of them in one error.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
from mmengine.config import Config

from promptsync.errors import ConfigError
from promptsync.registry import (ALL_REGISTRIES, BACKBONES, DATASETS, HOOKS, LOOPS, LOSSES, METRICS, MMENGINE_BACKED,
                                 PROMPT_LEARNERS, TRAINERS, TRANSFORMS, TTA_METHODS, module_arguments,
                                 registered_names)


@dataclass(frozen=True)
class Module:
    """A module config of ``registry``; ``extra`` keys are read by the toolbox, not by the constructor."""
    registry: Any
    extra: tuple[str, ...] = ()
    nested: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModuleList:
    registry: Any
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class Kwargs:
    """A dict of keyword arguments of ``target`` (a function or class), e.g. ``grad_scaler`` -> ``GradScaler``."""
    target: Any


@dataclass(frozen=True)
class AnyKeys:
    """A dict whose keys are free (names), each value checked against ``value``."""
    value: Any


ANY = object()
_MODULE_COMMON = ('type', '_scope_', '_delete_')

DATASET = Module(DATASETS)
MODEL = dict(backbone=Module(BACKBONES), prompt_learner=Module(PROMPT_LEARNERS), prompt_checkpoint=ANY,
             text_chunk_size=ANY, image_chunk_size=ANY)
TEST_DATA = dict(dataset=DATASET, batch_size=ANY, num_workers=ANY, max_samples=ANY, shard=ANY, subset_seed=ANY,
                 stream=ANY)  # data.stream is checked by engine/stream.py
PROXY_DATA = dict(dataset=DATASET, batch_size=ANY, num_workers=ANY, max_samples=ANY, subset_seed=ANY)
PROTOTYPES = dict(file=ANY, layers=ANY, per_class=ANY, token_stats=ANY, dtype=ANY, save_every=ANY,
                  views=Module(TRANSFORMS), seed=ANY, verify=ANY)
TRAIN_DATA = dict(dataset=DATASET, num_shots=ANY, batch_size=ANY, num_workers=ANY, short_classes=ANY)
VAL_DATA = dict(dataset=DATASET, max_samples=ANY, batch_size=ANY, num_workers=ANY, subset_seed=ANY)
ENV_CFG = dict(dist_cfg=dict(backend=ANY, timeout=ANY))
COMMON = dict(default_scope=ANY, custom_imports=ANY, seed=ANY, device=ANY, work_dir=ANY, log_level=ANY,
              run_name=ANY, custom_hooks=ModuleList(HOOKS, extra=('priority',)),
              default_hooks=AnyKeys(Module(HOOKS, extra=('priority',))), env_cfg=ENV_CFG, suite=ANY, ablation=ANY,
              model=MODEL, metrics=ModuleList(METRICS), test_cfg=Module(LOOPS), train_cfg=Module(LOOPS),
              prototype_cfg=Module(LOOPS), pretrain_cfg=Module(LOOPS))
#: the sections of a TTA / prototypes / training config (one file may hold all of them)
GRAD_SCALER = Kwargs(torch.amp.GradScaler)
TTA_SCHEMA = dict(COMMON, data=TEST_DATA, proxy_data=PROXY_DATA, prototypes=PROTOTYPES,
                  tta=Module(TTA_METHODS, extra=('views',), nested=dict(views=Module(TRANSFORMS),
                                                                         grad_scaler=GRAD_SCALER)),
                  train_data=TRAIN_DATA, val_data=VAL_DATA,
                  trainer=Module(TRAINERS, nested=dict(train_view=Module(TRANSFORMS), grad_scaler=GRAD_SCALER)))
PRETRAIN_SCHEMA = dict(
    COMMON, model_name=ANY, model_config=ANY,
    data=dict(per_style=ANY, image_size=ANY, workers=ANY, eval_root=ANY, eval_per_class=ANY, test_per_class=ANY),
    train=dict(epochs=ANY, batch_size=ANY, lr=ANY, weight_decay=ANY, warmup_steps=ANY, grad_clip=ANY,
               freeze_token_embedding=ANY, crop_pad=ANY, flip=ANY, max_logit_scale=ANY),
    output=dict(dir=ANY, name=ANY, dtype=ANY))
SCHEMAS = dict(test=TTA_SCHEMA, train=TTA_SCHEMA, prototypes=TTA_SCHEMA, pretrain=PRETRAIN_SCHEMA)
#: registries searched for a nested ``type`` whose slot the schema does not name (e.g. a loss's selection)
_BY_EXTRA = {LOSSES.name: ('weight', 'name')}


def _closest(key: str, options) -> str:
    near = difflib.get_close_matches(key, list(options), n=1, cutoff=0.5)
    return f"did you mean '{near[0]}'? " if near else ''


def _find(type_name: str, registry=None):
    if registry is not None:
        obj = registry.get(type_name)
        if obj is not None:
            return registry, obj
    for reg in {**ALL_REGISTRIES, **MMENGINE_BACKED}.values():
        obj = reg.get(type_name)
        if obj is not None:
            return reg, obj
    return registry, None


class _Checker:
    def __init__(self):
        self.problems: list[str] = []

    def section(self, node: Any, schema: Any, where: str) -> None:
        if schema is ANY or node is None:
            return
        if isinstance(schema, Module):
            self.module(node, schema, where)
        elif isinstance(schema, ModuleList):
            if isinstance(node, (list, tuple)):
                for i, item in enumerate(node):
                    self.module(item, Module(schema.registry, schema.extra), f'{where}.{i}')
        elif isinstance(schema, AnyKeys):
            if isinstance(node, dict):
                for k, v in node.items():
                    self.section(v, schema.value, f'{where}.{k}')
        elif isinstance(schema, dict) and isinstance(node, dict):
            for key, value in node.items():
                if key == '_delete_':
                    continue
                if key not in schema:
                    self.problems.append(
                        f"unknown config key '{where + '.' if where else ''}{key}': {_closest(key, schema)}"
                        f"{'the top level' if not where else repr(where)} has: {', '.join(sorted(schema))}")
                    continue
                self.section(value, schema[key], f'{where}.{key}' if where else key)

    def module(self, node: Any, spec: Module, where: str) -> None:
        if not isinstance(node, dict):
            return
        type_name = node.get('type')
        if type_name is None:
            return
        if not isinstance(type_name, str):
            registry, obj = spec.registry, type_name
            type_name = getattr(obj, '__name__', str(obj))
        else:
            registry, obj = _find(type_name, spec.registry)
        if obj is None:
            self.problems.append(f"'{type_name}' ({where}.type) is not registered in the promptsync "
                                 f"'{spec.registry.name}' registry")
            return
        names, var_kw = module_arguments(obj)
        extra = set(spec.extra) | set(_BY_EXTRA.get(registry.name, ()))
        for key, value in node.items():
            if key in _MODULE_COMMON or key in extra:
                if key in spec.nested:
                    self.module(value, spec.nested[key], f'{where}.{key}')
                continue
            if key not in names and not var_kw:
                valid = names + sorted(extra)
                self.problems.append(f"{registry.name} '{type_name}' ({where}) has no argument '{key}': "
                                     f"{_closest(key, valid)}its arguments: {', '.join(valid) or '(none)'}")
                continue
            self.nested(value, spec.nested.get(key), f'{where}.{key}')

    def nested(self, value: Any, spec: Any, where: str) -> None:
        """Module configs inside module arguments (a method's losses, selection, optimizer, ...)."""
        if isinstance(spec, Module):
            self.module(value, spec, where)
        elif isinstance(spec, Kwargs):
            if isinstance(value, dict):
                names, var_kw = module_arguments(spec.target)
                for key in value:
                    if key not in names and not var_kw:
                        self.problems.append(f"'{key}' ({where}) is not an argument of {spec.target.__name__}: "
                                             f"{_closest(key, names)}its arguments: {', '.join(names)}")
        elif isinstance(value, dict) and 'type' in value:
            if not isinstance(value['type'], str):
                return
            registry, obj = _find(value['type'])
            if obj is None:
                every = sorted({n for reg in {**ALL_REGISTRIES, **MMENGINE_BACKED}.values() for n in registered_names(reg)})
                self.problems.append(f"'{value['type']}' ({where}.type) is not registered in any promptsync "
                                     f"registry: {_closest(value['type'], every)}".rstrip(': '))
                return
            self.module(value, Module(registry), where)
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                if isinstance(item, dict) and isinstance(item.get('type'), str):
                    self.nested(item, None, f'{where}.{i}')


def check_config(cfg: Config | Mapping, job: str = 'test') -> None:
    """Raise one :class:`ConfigError` listing every unknown key of ``cfg`` for ``job``."""
    if job not in SCHEMAS:
        raise ValueError(f"unknown job '{job}'; jobs: {sorted(SCHEMAS)}")
    tree = cfg.to_dict() if isinstance(cfg, Config) else dict(cfg)
    tree.pop('filename', None)
    checker = _Checker()
    checker.section(tree, SCHEMAS[job], '')
    if checker.problems:
        listed = '\n'.join(f'  - {p}' for p in checker.problems)
        raise ConfigError(f'{len(checker.problems)} config key(s) mean nothing to promptsync:\n{listed}',
                          where=str(getattr(cfg, 'filename', None) or 'the config') + ' (after --cfg-options)',
                          fix='correct the key (a typo is ignored by nobody here), or remove it')
