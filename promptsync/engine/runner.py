"""The Runner: one execution layer for every job of the toolbox.

A job is a registered loop (``LOOPS``) run by the Runner:

========== ==================== ===========================================================
job        loop                 what it computes
========== ==================== ===========================================================
test       ``TTALoop``          test-time adaptation + predictions + metrics (``tools/test.py``)
train      ``PromptTrainLoop``  few-shot prompt learning (``tools/train.py``)
prototypes ``PrototypeLoop``    offline prototype bank of a proxy set (``tools/compute_prototypes.py``)
pretrain   ``CLIPPretrainLoop`` the embedded benchmark's tiny CLIP (``tools/pretrain_tiny_clip.py``)
========== ==================== ===========================================================

The Runner owns what every job needs, written once: the config check (unknown keys are errors), the
distributed process group, the work dir and its lock, the dumped config, the run's ``MMLogger`` (errors
included), seeding, the device, the outside resources (all missing ones named at once), the job's provenance
(fingerprint of config + file contents), the unreadable-image ledger and the hooks (``default_hooks`` +
``custom_hooks``). A loop may be swapped in the config (``test_cfg=dict(type='MyLoop')``). Why this is our
Runner on mmengine's ``BaseLoop``/``Hook``/``dist``/``MMLogger`` rather than mmengine's ``Runner``:
docs/architecture.md.
"""
from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
import traceback
from pathlib import Path
from typing import Any

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope
from mmengine.utils import import_modules_from_strings

from promptsync import __version__
from promptsync.datasets.unreadable import UnreadableLedger
from promptsync.errors import ConfigError, DistributedError, PromptsyncError
from promptsync.hooks import HookList
from promptsync.registry import LOOPS, RUNNERS, SCOPE, register_all_modules
from promptsync.utils.config import lookup
from promptsync.utils.logging import close_run_logger, open_run_logger
from promptsync.utils.seeding import seed_everything

from . import dist
from .config_check import check_config
from .lock import WorkDirLock
from .provenance import fingerprint_and_files
from .resources import list_resources, require_resources
from .shards import parse_shard, shard_dir

JOB_LOOPS = dict(test='TTALoop', train='PromptTrainLoop', prototypes='PrototypeLoop', pretrain='CLIPPretrainLoop')
LOOP_KEYS = dict(test='test_cfg', train='train_cfg', prototypes='prototype_cfg', pretrain='pretrain_cfg')
DEFAULT_HOOKS = dict(progress=dict(type='ProgressBarHook'))
#: the sections a job cannot run without (checked before anything else), and what to write
REQUIRED = dict(
    test=(('model', 'data.dataset', 'tta'), "a test config needs model=dict(backbone=...), data=dict(dataset=...) "
          "and tta=dict(type=...) (see configs/_base_/)"),
    train=(('model', 'train_data.dataset', 'trainer'), "a training config needs model, train_data=dict(dataset=..., "
           "num_shots=...), trainer=dict(type='PromptTrainer', ...) and work_dir (tools/train.py sets it)"),
    prototypes=(('model', 'proxy_data.dataset', 'prototypes.file'), 'a prototypes job needs model, '
                'proxy_data=dict(dataset=...) and prototypes=dict(file=..., layers=...) (see configs/_base_/prototypes/)'),
    pretrain=(('model_name', 'data', 'train', 'output'), 'a pretraining config needs model_name, data, train and '
              'output (see configs/pretrain/)'))


PEER_FAILED = ('stopped: another rank failed (its error is above and in log.txt); nothing was merged, and re-running '
               'the same command resumes from what every rank had written')


def _peer_failed(err: BaseException) -> bool:
    """A collective that broke because another process died (gloo / NCCL wording)."""
    text = str(err)
    return isinstance(err, RuntimeError) and any(k in text for k in (
        'Connection closed by peer', 'remote worker', 'Connection reset by peer', 'NCCL communicator was aborted'))


def _missing_sections(cfg: Config, job: str) -> list[str]:
    tree = cfg.to_dict()
    return [dotted if dotted.split('.')[0] in tree else dotted.split('.')[0]
            for dotted in REQUIRED[job][0] if not lookup(tree, dotted)]


def resolve_device(device: str | None) -> torch.device:
    """'auto' -> this process's GPU (its local rank) or the CPU; 'cuda' -> the local rank's GPU."""
    device = device or 'auto'
    if device == 'auto':
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
    dev = torch.device(device)
    if dev.type == 'cuda':
        if not torch.cuda.is_available():
            raise ConfigError(f"device='{device}' but CUDA is not available", where='device',
                              fix="use device='cpu' or 'auto'")
        if dev.index is None:
            dev = torch.device('cuda', dist.local_rank())
    return dev


def default_work_dir(cfg: Config, job: str) -> Path:
    source = Path(cfg.filename or 'config.py')
    if job == 'prototypes' and (cfg.get('prototypes') or {}).get('file'):
        bank = Path(cfg.prototypes.file)
        return bank.with_name(bank.stem + '.work')
    if job == 'pretrain':
        return Path('work_dirs') / 'pretrain' / source.stem
    return Path('work_dirs') / source.parent.name / source.stem


def versions() -> dict[str, str]:
    import mmengine
    import open_clip
    return dict(promptsync=__version__, python=platform.python_version(), torch=torch.__version__,
                open_clip=open_clip.__version__, mmengine=mmengine.__version__,
                promptsync_path=str(Path(__file__).resolve().parents[1]))


@RUNNERS.register_module()
def prepare_config(cfg, job: str) -> None:
    """What every use of a config for ``job`` does first: registries and the default scope, the config's
    ``custom_imports``, then its required sections and unknown keys (errors)."""
    if job not in JOB_LOOPS:
        raise ConfigError(f"unknown job '{job}'", fix=f'jobs: {sorted(JOB_LOOPS)}')
    register_all_modules(init_default_scope=False)
    init_default_scope(cfg.get('default_scope') or SCOPE)
    imports = cfg.get('custom_imports')
    if imports:  # Config.fromfile imports a file's own; these may come from --cfg-options or code
        import_modules_from_strings(**dict(imports))
    missing = _missing_sections(cfg, job)
    if missing:
        raise ConfigError(f'{REQUIRED[job][1]}; missing: {missing}', where=str(cfg.filename or 'the config'))
    check_config(cfg, job)


class Runner:
    """Args:
        cfg: the resolved config (``load_config`` applies ``--cfg-options``).
        resume: continue the same job in the same work dir (``False``: discard what is there and start over).
        launcher: ``'none'`` (one process), ``'pytorch'`` (torchrun), ``'slurm'``, ``'mpi'``.
        shard: ``(i, n)``: this process evaluates shard ``i`` of ``n`` (separate jobs, e.g. a SLURM array;
            test only). Under a launcher the shard is the rank.
        check_data: refuse a dataset whose label map is inconsistent (``tools/test.py --skip-data-check``).
        hooks: extra built hooks (e.g. a probe) besides the config's.
    """

    def __init__(self, cfg: Config, resume: bool = True, launcher: str = 'none', shard=None, check_data: bool = True,
                 hooks=()):
        self.cfg = cfg
        self.resume = resume
        self.launcher = launcher
        self.shard_arg = parse_shard(shard)
        self.check_data = check_data
        self.extra_hooks = list(hooks)
        self.job: str | None = None
        self.progress: dict[str, Any] = {}
        self.ledger: UnreadableLedger | None = None
        self.logger = None
        self.loop = None
        self.rank, self.world_size = 0, 1
        self.started = time.time()

    @classmethod
    def from_cfg(cls, cfg: Config, **kwargs) -> 'Runner':
        return cls(cfg, **kwargs)

    # ------------------------------------------------------------------ jobs
    def test(self) -> dict:
        return self.run('test')

    def train(self):
        return self.run('train')

    def prototypes(self) -> Path:
        return self.run('prototypes')

    def pretrain(self) -> Path:
        return self.run('pretrain')

    def check(self, job: str = 'test') -> list:
        """The config check and the list of outside resources (a prototype bank also against the config's source),
        without running or writing anything."""
        from .loops.prototype_loop import bank_fingerprint  # (loops import the runner's helpers)
        from .provenance import fingerprint
        self._prepare(job)
        items = list_resources(self.cfg, job)
        for item in items:
            if item.what == 'prototype bank' and item.status == 'found' and item.key == 'prototypes.file':
                got, want = bank_fingerprint(item.value), fingerprint(self.cfg, 'prototypes')
                if got != want and (self.cfg.get('prototypes') or {}).get('verify', True) is not False:
                    item.status = 'missing'
                    item.fix = (f'the bank was computed from another source ({got}, this config {want}): '
                                f'python tools/compute_prototypes.py {self.cfg.filename} (same --cfg-options)')
        return items

    # ------------------------------------------------------------------ properties the loops read
    @property
    def seed(self) -> int:
        return int(self.cfg.get('seed', 0))

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def shard(self) -> tuple[int, int] | None:
        """The share of the samples this process evaluates: its rank, a ``--shard``, or everything (None)."""
        if self.distributed:
            return self.rank, self.world_size
        return self.shard_arg

    @property
    def owns_work_dir(self) -> bool:
        """Whether this process holds the work dir (a ``--shard`` job holds only its shard dir)."""
        return self.rank == 0 and self.shard_arg is None

    # ------------------------------------------------------------------ the session around a job
    def _prepare(self, job: str) -> None:
        prepare_config(self.cfg, job)
        if self.shard_arg is None and job == 'test':  # data.shard in the config is the same as --shard
            self.shard_arg = parse_shard((self.cfg.get('data') or {}).get('shard'))
        if self.shard_arg is not None and job != 'test':
            raise ConfigError('--shard splits the samples of a test run only', where='--shard',
                              fix='use torchrun with --launcher pytorch for prototypes and training')
        self.job = job
        self.work_dir = Path(self.cfg.get('work_dir') or default_work_dir(self.cfg, job))
        self.cfg.work_dir = str(self.work_dir)

    def run(self, job: str):
        self._prepare(job)
        env = dict(self.cfg.get('env_cfg') or {}).get('dist_cfg') or {}
        initialised = dist.init_distributed(self.launcher, env.get('backend'), env.get('timeout'))
        try:
            self.rank, self.world_size = dist.rank_and_world()
            if self.distributed and self.shard_arg is not None:
                raise ConfigError('a launcher splits the samples by rank: --shard / data.shard cannot be combined '
                                  'with it', where='--shard / data.shard', fix='drop one of the two')
            self.device = resolve_device(self.cfg.get('device', 'auto'))
            if self.distributed and self.device.type == 'cuda':
                torch.cuda.set_device(self.device)
            with self._session():
                loop_cfg = dict(self.cfg.get(LOOP_KEYS[job]) or {})
                loop_cfg.setdefault('type', JOB_LOOPS[job])
                self.loop = LOOPS.build(loop_cfg, default_args=dict(runner=self))
                self.hooks.call('before_run')
                result = self.loop.run()
                self.hooks.call('after_run')
                return result
        finally:
            dist.close_distributed(initialised)

    @contextlib.contextmanager
    def _session(self):
        lock_dir = self.work_dir if self.shard_arg is None else shard_dir(self.work_dir, self.shard_arg)
        if self.rank == 0:
            lock_dir.mkdir(parents=True, exist_ok=True)
        dist.barrier()
        lock = WorkDirLock(lock_dir) if self.rank == 0 else None
        if lock is not None:
            lock.acquire()
        self.logger = open_run_logger(str(self.work_dir / 'log.txt'), self.cfg.get('log_level', 'INFO')
                                      if self.rank == 0 else 'ERROR')
        try:
            if self.rank == 0:
                self.cfg.dump(str(lock_dir / 'config.py'))
            self.logger.info('promptsync %s: %s job of %s in %s%s', __version__, self.job, self.cfg.filename,
                             self.work_dir, f' (rank {self.rank} of {self.world_size})' if self.distributed else '')
            seed_everything(self.seed)
            self.resources = require_resources(self.cfg, self.job)
            # what this job's results depend on: the config and the contents of every file it names
            self.fingerprint, self.files = fingerprint_and_files(self.cfg, self.job)
            self.ledger = UnreadableLedger()
            hooks_cfg = dict(DEFAULT_HOOKS, **dict(self.cfg.get('default_hooks') or {}))
            self.hooks = HookList([h for h in hooks_cfg.values() if h] + list(self.cfg.get('custom_hooks') or [])
                                  + self.extra_hooks, runner=self)
            yield
        except BaseException as err:
            self._log_error(err)
            if self.distributed and _peer_failed(err):
                raise DistributedError(PEER_FAILED, where=f'rank {self.rank}') from err
            raise
        finally:
            if lock is not None:
                lock.release()
            close_run_logger(self.logger)

    def _log_error(self, err: BaseException) -> None:
        """The short message to the log (and stderr); the traceback to the log file only."""
        if isinstance(err, KeyboardInterrupt):
            self.logger.error('interrupted; re-run the same command to resume')
            return
        where = f'rank {self.rank}: ' if self.distributed else ''
        text = err.message if isinstance(err, PromptsyncError) else f'{type(err).__name__}: {err}'
        if self.distributed and _peer_failed(err):
            text = PEER_FAILED
        self.logger.error('%s%s', where, text)
        lines = ''.join(traceback.format_exception(type(err), err, err.__traceback__))
        if self.rank != 0:  # only rank 0's logger writes the file: the other ranks' errors are added here
            lines = f'{time.strftime("%Y/%m/%d %H:%M:%S")} - promptsync - ERROR - {where}{text}\n{lines}'
        try:
            with open(self.work_dir / 'log.txt', 'a') as fh:
                fh.write(lines)
            err.promptsync_log = str(self.work_dir / 'log.txt')  # the tools point at it
        except (OSError, AttributeError):
            pass

    # ------------------------------------------------------------------ what every job records
    def run_info(self) -> dict:
        """Provenance of this process's run (``run.json``): versions, command, device, world size."""
        return dict(job=self.job, config=str(self.cfg.filename), seed=self.seed, device=str(self.device),
                    world_size=self.world_size, shard=list(self.shard) if self.shard else None,
                    launcher=self.launcher, command=' '.join([os.path.basename(sys.executable)] + sys.argv),
                    versions=versions(), started=time.strftime('%Y-%m-%dT%H:%M:%S', time.localtime(self.started)))
