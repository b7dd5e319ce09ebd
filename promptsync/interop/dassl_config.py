"""Dassl / CoOp / MaPLe / PromptAlign YAML (yacs) configs read as their ``train.py`` reads them, then converted.

``setup_cfg`` of those repos: Dassl's defaults + the repo's ``extend_cfg`` keys (``data/dassl_defaults.yaml``), the
dataset YAML, then the trainer YAML (``merge_from_file``), then ``--trainer``/``--seed``/``--root`` (``reset_cfg``),
then the trailing ``KEY VALUE`` list (``merge_from_list``). Reading is the same here with two differences made for
safety: the file text is given to yacs as a string (``CfgNode.load_cfg(str)`` = ``yaml.safe_load``), because
``merge_from_file`` *executes* a ``.py`` file given as a config; and every yacs error (unknown key, wrong type) is a
:class:`~promptsync.errors.ConfigError` that names the key and the closest valid one.

Every key then gets a verdict (``data/dassl_mapping.yaml``): mapped (to a promptsync key, ``dassl_build.py``),
ignored with its reason, or refused (all refusals in one error). Nothing is dropped: :class:`Conversion` carries
the report, which the tools print and write into the run's log.
"""
from __future__ import annotations

import copy
import difflib
import fnmatch
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import yaml

from promptsync.errors import ConfigError

DATA = Path(__file__).parent / 'data'
YAML_SUFFIXES = ('.yaml', '.yml')
JOBS = ('train', 'test')


def is_dassl_config(path: str | Path) -> bool:
    return Path(path).suffix.lower() in YAML_SUFFIXES


@lru_cache(maxsize=None)
def mapping_table() -> dict:
    return yaml.safe_load((DATA / 'dassl_mapping.yaml').read_text())


def _cfgnode():
    from yacs.config import CfgNode
    return CfgNode


def _decode(tree: Any) -> Any:
    """Strings read as yacs reads YAML values (``'(224, 224)'`` -> a tuple, ``'1e-5'`` -> a float)."""
    if isinstance(tree, dict):
        return {k: _decode(v) for k, v in tree.items()}
    return _cfgnode()._decode_cfg_value(tree)


def dassl_defaults():
    """A fresh yacs ``CfgNode`` of Dassl's defaults + the extend_cfg keys."""
    text = (DATA / 'dassl_defaults.yaml').read_text()
    return _cfgnode()(_decode(yaml.safe_load(text)))


def leaves(tree: Any, prefix: str = '') -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(leaves(v, f'{prefix}{k}.'))
        else:
            out[f'{prefix}{k}'] = v
    return out


def _unknown_key_error(err: Exception, defaults_keys: Sequence[str], where: str) -> ConfigError:
    text = str(err).strip('"\'')
    key = text.split(':')[-1].strip()
    near = difflib.get_close_matches(key, list(defaults_keys), n=3, cutoff=0.6)
    hint = f"did you mean {', '.join(near)}? " if near else ''
    return ConfigError(f'{where}: {text} (yacs refuses keys that are not in Dassl\'s defaults or the '
                       f'CoOp/MaPLe/PromptAlign extend_cfg keys). {hint}', where=where,
                       fix='correct the key (docs/interop.md lists every known key)')


def read_dassl_config(trainer_yaml: str | Path, dataset_yaml: str | Path | None = None,
                      opts: Sequence[str] = (), trainer: str | None = None, seed: int | None = None,
                      root: str | None = None):
    """The merged yacs config, in the order of the repos' ``setup_cfg``."""
    cfg = dassl_defaults()
    known = list(leaves(cfg))
    for path in [p for p in (dataset_yaml, trainer_yaml) if p]:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f'the YAML config {path} does not exist', where=str(path),
                              fix='give the path of a Dassl/CoOp/MaPLe/PromptAlign .yaml file')
        if not is_dassl_config(path):
            raise ConfigError(f'{path} is not a .yaml file', where=str(path),
                              fix='give the trainer and dataset configs as .yaml files (a python config is not '
                                  'read as a Dassl config: yacs would execute it)')
        try:
            other = _cfgnode().load_cfg(path.read_text())   # a str: yaml.safe_load, never executed
        except yaml.YAMLError as err:
            raise ConfigError(f'{path} is not valid YAML: {err}', where=str(path), fix='fix the YAML syntax') from err
        try:
            cfg.merge_from_other_cfg(other)
        except KeyError as err:
            raise _unknown_key_error(err, known, str(path)) from err
        except (ValueError, AssertionError) as err:
            raise ConfigError(f'{path}: {err}', where=str(path),
                              fix="give each key a value of its default's type (docs/interop.md)") from err
    if root:
        cfg.DATASET.ROOT = root
    if seed is not None:
        cfg.SEED = int(seed)
    if trainer:
        cfg.TRAINER.NAME = trainer
    opts = list(opts or ())
    if len(opts) % 2:
        raise ConfigError(f'the Dassl options must be KEY VALUE pairs; got an odd number: {opts}',
                          where='the trailing options', fix='e.g. DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES base')
    for key in opts[0::2]:
        if key not in known:
            raise _unknown_key_error(KeyError(f'Non-existent key: {key}'), known, 'the trailing options')
    try:
        cfg.merge_from_list(opts)
    except (ValueError, AssertionError) as err:
        raise ConfigError(f'the trailing options: {err}', where='the trailing options',
                          fix="give each key a value of its default's type") from err
    return cfg


# ---------------------------------------------------------------------------------------------------- the report
@dataclass
class Entry:
    key: str
    value: Any
    verdict: str            # 'mapped' | 'ignored' | 'refused'
    to: str = ''
    note: str = ''
    default: bool = False   # the value is Dassl's default


@dataclass
class Conversion:
    """A converted config: ``bases`` (paths under configs/) and ``overrides``, the report, the source files."""
    job: str
    trainer: str
    bases: list[str]
    overrides: dict
    entries: list[Entry]
    sources: list[tuple[str, str]] = field(default_factory=list)   # (path, sha256)
    opts: list[str] = field(default_factory=list)

    def by_verdict(self, verdict: str) -> list[Entry]:
        return [e for e in self.entries if e.verdict == verdict]

    def report_lines(self) -> list[str]:
        src = ', '.join(f'{p} (sha256 {h[:12]})' for p, h in self.sources)
        lines = [f'Dassl config conversion ({self.job} job, trainer {self.trainer}): {src}'
                 + (f"; options {' '.join(self.opts)}" if self.opts else '')]
        mapped, ignored = self.by_verdict('mapped'), self.by_verdict('ignored')
        lines.append(f'  mapped ({len(mapped)}):')
        lines += [f'    {e.key} = {e.value!r} -> {e.to}' + (f'  [{e.note}]' if e.note else '') for e in mapped]
        lines.append(f'  ignored ({len(ignored)}):')
        lines += [f'    {e.key} = {e.value!r}: {e.note}' for e in ignored]
        return lines

    def report(self) -> str:
        return '\n'.join(self.report_lines())


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def rule_for(key: str) -> dict:
    """The mapping rule of a key (exact key first, then the longest ``PREFIX.*``)."""
    rules = mapping_table()['rules']
    exact = [r for r in rules if r['key'] == key]
    if exact:
        return exact[0]
    wild = sorted((r for r in rules if r['key'].endswith('.*') and fnmatch.fnmatchcase(key, r['key'])),
                  key=lambda r: -len(r['key']))
    if not wild:
        raise KeyError(f'{key} has no rule in promptsync/interop/data/dassl_mapping.yaml')
    return wild[0]


def convert_dassl_config(trainer_yaml: str | Path, dataset_yaml: str | Path | None = None, job: str = 'train',
                         opts: Sequence[str] = (), trainer: str | None = None, seed: int | None = None,
                         root: str | None = None, prompt_checkpoint: str | None = None) -> Conversion:
    """Read the YAML pair (+ options) and build the equivalent promptsync config for ``job`` ('train' | 'test').

    Raises one :class:`ConfigError` listing every refused key (what, and how to fix it).
    """
    from .dassl_build import Builder
    if job not in JOBS:
        raise ValueError(f'job must be one of {JOBS}, got {job!r}')
    cfg = read_dassl_config(trainer_yaml, dataset_yaml, opts, trainer, seed, root)
    values = leaves(cfg)
    defaults = leaves(dassl_defaults())
    builder = Builder(values, defaults, job, prompt_checkpoint)
    entries: list[Entry] = []
    for key, value in values.items():
        rule = rule_for(key)
        entries.append(builder.verdict(key, copy.deepcopy(value), rule))
    refused = [e for e in entries if e.verdict == 'refused']
    refused += builder.problems
    if refused:
        listed = '\n'.join(f'  - {e.key} = {e.value!r}: {e.note}' for e in refused)
        raise ConfigError(f'{len(refused)} key(s) of {trainer_yaml}'
                          + (f' + {dataset_yaml}' if dataset_yaml else '')
                          + f' cannot be converted for promptsync ({job}):\n{listed}',
                          where=str(trainer_yaml),
                          fix='change the value as each line says (in the YAML or as a trailing KEY VALUE option)')
    sources = [(str(p), sha256(p)) for p in (trainer_yaml, dataset_yaml) if p]
    return Conversion(job, builder.trainer, builder.bases(), builder.overrides(), entries, sources, list(opts or ()))

