"""Distributed runs on ``torch.distributed``, through mmengine's ``dist`` utilities.

``torchrun --nproc_per_node=N tools/<tool>.py CONFIG --launcher pytorch`` (and torchrun's multi-node arguments)
starts N processes; each reads its rank from the environment torchrun sets. With a GPU the process group is
initialised by mmengine's ``init_dist`` (NCCL, one device per local rank). Without one, mmengine's ``init_dist``
cannot be used (it always calls ``torch.cuda.set_device``), so the group is initialised with gloo directly;
everything after that (rank, world size, barrier, reductions, broadcasts) goes through ``mmengine.dist``.
"""
from __future__ import annotations

import os
from datetime import timedelta

import torch
import torch.distributed as torch_dist
from mmengine import dist as mmdist

from promptsync.errors import ConfigError, DistributedError

LAUNCHERS = ('none', 'pytorch', 'slurm', 'mpi')
_TORCHRUN_ENV = ('RANK', 'WORLD_SIZE', 'LOCAL_RANK', 'MASTER_ADDR', 'MASTER_PORT')


def init_distributed(launcher: str, backend: str | None = None, timeout_s: int | None = None) -> bool:
    """Join the process group of ``launcher``; returns True when this call initialised it."""
    if launcher not in LAUNCHERS:
        raise ConfigError(f"unknown launcher '{launcher}'", where='--launcher', fix=f'use one of {LAUNCHERS}')
    if launcher == 'none' or mmdist.is_distributed():
        return False
    if launcher == 'pytorch':
        missing = [k for k in _TORCHRUN_ENV if k not in os.environ]
        if missing:
            raise DistributedError(f'--launcher pytorch needs the environment torchrun sets; missing {missing}',
                                   fix='start the tool with torchrun --nproc_per_node=N tools/<tool>.py CONFIG '
                                       '--launcher pytorch (or drop --launcher for one process)')
    kwargs = {} if timeout_s is None else dict(timeout=timeout_s)
    if torch.cuda.is_available():
        mmdist.init_dist(launcher, backend=backend or 'nccl', **kwargs)
    elif launcher == 'pytorch':
        torch_dist.init_process_group(backend=backend or 'gloo',
                                      **({} if timeout_s is None else dict(timeout=timedelta(seconds=timeout_s))))
    else:
        raise DistributedError(f'--launcher {launcher} without a GPU is not supported',
                               fix='use torchrun with --launcher pytorch (gloo) on CPU machines')
    return True


def close_distributed(initialised: bool) -> None:
    if initialised and torch_dist.is_initialized():
        torch_dist.destroy_process_group()


def rank_and_world() -> tuple[int, int]:
    return mmdist.get_dist_info()


def local_rank() -> int:
    return mmdist.get_local_rank() if mmdist.is_distributed() else 0


def barrier() -> None:
    mmdist.barrier()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over ranks, in place (a no-op in one process)."""
    if mmdist.is_distributed():
        mmdist.all_reduce(tensor, op='sum')
    return tensor


def all_gather_object(obj) -> list:
    """Every rank's (small, picklable) ``obj``, in rank order; ``[obj]`` in one process."""
    return mmdist.all_gather_object(obj) if mmdist.is_distributed() else [obj]
