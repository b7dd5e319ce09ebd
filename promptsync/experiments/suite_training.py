"""Prompts a suite learns before its cells run (base-to-novel): one training per (learner, dataset group, seed).

A suite names its learners and the training data of each dataset group::

    suite = dict(
        train=dict(learners=dict(maple='configs/shapes/b2n/maple_train.py', ...),   # tools/train.py configs
                   datasets=dict(photo={'train_data.dataset.domain': 'photo'})),     # per group overrides
        methods=dict(maple_tpt=dict(config='configs/shapes/maple_tpt.py', prompts='maple',
                                    prototypes=True), ...),                          # a bank per seed too
        datasets={'photo/base': {...}, 'photo/new': {...}})   # group = the name before '/' (or entry 'train')

For every method with ``prompts=L``, every group its datasets use and every seed of the method, the learner
``L`` is trained with that seed into ``<work_dir>/train/<L>/<group>/seed<s>`` (reused when its ``run.json`` says
done for the same fingerprint, resumed when interrupted) and the cell's ``model.prompt_checkpoint`` points at the
result. With ``prototypes=True`` the method's prototype bank is computed with those prompts into
``<work_dir>/prototypes/<method>/<group>/seed<s>.safetensors`` (token statistics depend on the prompts), reused
when current. A failing training or bank is recorded and fails only the cells that need it.
"""
from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any, Mapping

from mmengine.config import Config

from promptsync.engine import compute_prototypes, train_prompts
from promptsync.engine.loops.prototype_loop import bank_is_current
from promptsync.engine.provenance import fingerprint
from promptsync.experiments.runs import CellProgress, set_key
from promptsync.utils.config import load_config
from promptsync.utils.logging import get_logger

logger = get_logger('benchmark')


def dataset_group(name: str, entry: Mapping[str, Any]) -> str:
    """The training group of a dataset column: its entry's ``train``, else the name before '/' (base-to-novel)."""
    if 'overrides' in entry and entry.get('train'):
        return str(entry['train'])
    return name.rpartition('/')[0] or name


def _finished_checkpoint(run_dir: Path, fp: str) -> Path | None:
    try:
        run = json.loads((run_dir / 'run.json').read_text())
    except (OSError, ValueError):
        return None
    ckpt = Path(run.get('checkpoint') or '')
    return ckpt if run.get('status') == 'done' and run.get('fingerprint') == fp and ckpt.is_file() else None


class SuiteTraining:
    """The trainings and banks of one suite run; ``apply`` points a cell's config at them."""

    def __init__(self, spec: Mapping, methods: Mapping[str, Mapping], datasets: Mapping[str, Mapping],
                 work_dir: Path, root: Path, resume: bool, error_type: type[Exception] = ValueError):
        self.spec = dict(spec or {})
        self.learners = {k: str(v if Path(v).is_absolute() else Path(root) / v)
                         for k, v in dict(self.spec.get('learners') or {}).items()}
        self.group_overrides = {k: dict(v) for k, v in dict(self.spec.get('datasets') or {}).items()}
        self.options = dict(self.spec.get('cfg_options') or {})
        self.methods, self.datasets = methods, datasets
        self.work_dir, self.resume = Path(work_dir), resume
        self.checkpoints: dict[tuple, Path | str] = {}  # (learner, group, seed) -> path, or the error text
        self.banks: dict[tuple, Path | str] = {}        # (method, group, seed) -> path, or the error text
        self.records: list[dict] = []
        self._check(error_type)

    def _check(self, error_type) -> None:
        missing = {k: v for k, v in self.learners.items() if not Path(v).is_file()}
        if missing:  # before any training runs
            raise error_type(f'suite.train.learners names training configs that do not exist: {missing}')
        for method, entry in self.methods.items():
            learner = entry.get('prompts')
            if learner is None:
                if entry.get('prototypes'):
                    raise error_type(f"suite.methods.{method}: prototypes=True needs prompts=<learner> (a bank per "
                                     'trained seed); without trained prompts the method config\'s own bank is used')
                continue
            if learner not in self.learners:
                raise error_type(f"suite.methods.{method}.prompts='{learner}' is not one of suite.train.learners "
                                 f'{sorted(self.learners)}')
            for name, ds in self.datasets.items():
                group = dataset_group(name, ds)
                if group not in self.group_overrides:
                    raise error_type(f"dataset '{name}' trains on group '{group}', which suite.train.datasets does "
                                     f'not list (it has {sorted(self.group_overrides)})')

    def needed(self) -> tuple[list[tuple], list[tuple]]:
        trainings, banks = [], []
        groups = list(dict.fromkeys(dataset_group(n, d) for n, d in self.datasets.items()))
        for method, entry in self.methods.items():
            learner = entry.get('prompts')
            if learner is None:
                continue
            for group in groups:
                for seed in entry['seeds']:
                    if (learner, group, seed) not in trainings:
                        trainings.append((learner, group, seed))
                    if entry.get('prototypes'):
                        banks.append((method, group, seed))
        return trainings, banks

    def train_config(self, learner: str, group: str, seed: int) -> Config:
        cfg = load_config(self.learners[learner], self.options)
        for key, value in self.group_overrides[group].items():
            set_key(cfg._cfg_dict, key, value)
        cfg._cfg_dict['seed'] = seed
        cfg._cfg_dict['work_dir'] = str(self.work_dir / 'train' / learner / group / f'seed{seed}')
        return cfg

    def bank_path(self, method: str, group: str, seed: int) -> Path:
        return self.work_dir / 'prototypes' / method / group / f'seed{seed}.safetensors'

    def run(self, cell_config) -> list[dict]:
        """Train (or reuse) every needed learner, then compute every needed bank; ``cell_config(method, dataset
        name, seed)`` builds a cell's config (the bank's config is the first dataset of the group's)."""
        trainings, banks = self.needed()
        progress = CellProgress(len(trainings) + len(banks), 'prepare')
        for learner, group, seed in trainings:
            progress.start(f'train {learner} / {group} / seed {seed}')
            cfg = self.train_config(learner, group, seed)
            run_dir = Path(cfg.work_dir)
            done = _finished_checkpoint(run_dir, fingerprint(cfg, 'train')) if self.resume else None
            rec = dict(step='train', learner=learner, group=group, seed=seed, dir=str(run_dir))
            try:
                path = done or train_prompts(cfg, resume=self.resume)
                rec.update(status='reused' if done else 'ran', output=str(path))
                self.checkpoints[(learner, group, seed)] = Path(path)
            except Exception as err:  # noqa: BLE001 - recorded; the cells needing it fail, the suite goes on
                rec.update(status='failed', error=f'{type(err).__name__}: {err}')
                self.checkpoints[(learner, group, seed)] = f'training {learner}/{group}/seed{seed} failed: {err}'
                run_dir.mkdir(parents=True, exist_ok=True)
                (run_dir / 'error.txt').write_text(traceback.format_exc())
                print(f'FAILED training {run_dir}: {rec["error"]}', file=sys.stderr)
            self.records.append(rec)
        for method, group, seed in banks:
            progress.start(f'prototypes {method} / {group} / seed {seed}')
            first = next(n for n, d in self.datasets.items() if dataset_group(n, d) == group)
            cfg = cell_config(method, first, seed)
            rec = dict(step='prototypes', method=method, group=group, seed=seed)
            error = self.apply(cfg, method, group, seed, banks=False)
            try:
                if error:
                    raise RuntimeError(error)
                out = self.bank_path(method, group, seed)
                set_key(cfg._cfg_dict, 'prototypes.file', str(out))
                cfg._cfg_dict.pop('work_dir', None)
                reused = bank_is_current(cfg)
                path = out if reused else compute_prototypes(cfg, resume=self.resume)
                rec.update(status='reused' if reused else 'ran', output=str(path))
                self.banks[(method, group, seed)] = Path(path)
            except Exception as err:  # noqa: BLE001
                rec.update(status='failed', error=f'{type(err).__name__}: {err}')
                self.banks[(method, group, seed)] = f'prototypes {method}/{group}/seed{seed} failed: {err}'
                print(f'FAILED prototypes {method}/{group}/seed{seed}: {rec["error"]}', file=sys.stderr)
            self.records.append(rec)
        return self.records

    def apply(self, cfg: Config, method: str, group: str, seed: int, banks: bool = True) -> str | None:
        """Point ``cfg`` at the method's trained prompts (and bank); returns an error text when they failed."""
        entry = self.methods[method]
        learner = entry.get('prompts')
        if learner is None:
            return None
        ckpt = self.checkpoints.get((learner, group, seed))
        if not isinstance(ckpt, Path):
            return ckpt or f'no training of {learner}/{group}/seed{seed} ran'
        set_key(cfg._cfg_dict, 'model.prompt_checkpoint', str(ckpt))
        if banks and entry.get('prototypes'):
            bank = self.banks.get((method, group, seed))
            if not isinstance(bank, Path):
                return bank or f'no bank of {method}/{group}/seed{seed} was computed'
            set_key(cfg._cfg_dict, 'prototypes.file', str(bank))
        return None
