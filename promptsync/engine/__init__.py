"""The execution layer: the Runner, its loops (one per job), provenance, work dirs, distributed runs.

The functions below are the Python entry points of the jobs, for scripts and notebooks: each builds a
:class:`Runner` from a resolved config and runs one job (the tools do the same after parsing arguments).
"""
from __future__ import annotations

from pathlib import Path

from mmengine.config import Config

from .loops import TrainResult
from .runner import Runner

__all__ = ['Runner', 'TrainResult', 'run_test', 'fit_prompts', 'train_prompts', 'compute_prototypes', 'pretrain_clip']


def run_test(cfg: Config, resume: bool = True, **kwargs) -> dict:
    """TTA evaluation; returns what ``metrics.json`` holds plus this run's counters and timing."""
    return Runner(cfg, resume=resume, **kwargs).test()


def fit_prompts(cfg: Config, resume: bool = True, **kwargs) -> TrainResult:
    """Few-shot prompt learning; returns the checkpoint path, the trained model, the trainer and a summary."""
    return Runner(cfg, resume=resume, **kwargs).train()


def train_prompts(cfg: Config, resume: bool = True, **kwargs) -> Path:
    return fit_prompts(cfg, resume, **kwargs).checkpoint


def compute_prototypes(cfg: Config, resume: bool = True, **kwargs) -> Path:
    """The prototype bank of ``cfg`` (``prototypes.file``); returns its path."""
    return Runner(cfg, resume=resume, **kwargs).prototypes()


def pretrain_clip(cfg: Config, **kwargs) -> Path:
    """The tiny CLIP of the embedded benchmark; returns the checkpoint path."""
    return Runner(cfg, **kwargs).pretrain()
