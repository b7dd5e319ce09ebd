"""Seeds flow from the config: one run seed, and per-sample streams derived from (seed, sample index).

Deriving the augmentation randomness of sample ``i`` from ``(seed, i)`` alone makes a run independent of
batch size, worker count, shard and order: any subset of samples gets the same views as the full run.
"""
from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch


def derive_seed(seed: int, *keys: int) -> int:
    """A 32-bit seed from a run seed and integer keys (e.g. the sample index)."""
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *(int(k) for k in keys)]).generate_state(1)[0])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class SampleRNG:
    """Independent random streams of one sample: python, numpy, and (inside ``torch_scope``) torch."""
    seed: int
    py: random.Random
    np: np.random.Generator

    @classmethod
    def for_sample(cls, seed: int, index: int) -> 'SampleRNG':
        s = derive_seed(seed, index)
        return cls(seed=s, py=random.Random(s), np=np.random.default_rng(s))

    @contextlib.contextmanager
    def torch_scope(self) -> Iterator[None]:
        """Seed torch's global CPU generator for code that uses it (torchvision transforms), then restore it."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            yield
