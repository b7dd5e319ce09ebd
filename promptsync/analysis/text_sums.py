"""Sums over samples of the text-feature shift, from which the across-sample variance of the adapted text
embeddings is exact without keeping ``C x E`` numbers per sample.

With ``D_n = T_a^n - T_0`` (``[C, E]``, sample ``n``; ``T_0`` is the same for every sample of a run) the recorder
keeps ``S1 = sum_n D_n`` (``[C, E]``, float64), ``S2 = sum_n |D_n|_F^2`` and the indices summed. Then

    V  = (1/C) sum_c (1/N) sum_n |t_{a,c}^n - mean_n t_{a,c}^n|^2  =  (S2/N - |S1/N|_F^2) / C
    MS = (1/C) (1/N) sum_n |D_n|_F^2                                 =  S2 / (N C)

``V`` is the variance across samples of each class's adapted text embedding (summed over the ``E`` coordinates,
averaged over classes); ``MS`` the mean squared shift from the initial classifier, so ``V <= MS`` and ``V / MS``
is the share of the shift that differs from sample to sample (the rest is a shift common to all samples).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from promptsync.errors import CorruptFileError


@dataclass
class TextSums:
    sum_delta: torch.Tensor | None = None     # [C, E] float64, sum_n D_n
    sum_sq: float = 0.0                       # sum_n |D_n|_F^2
    indices: list[int] = field(default_factory=list)

    def add(self, index: int, delta: torch.Tensor) -> None:
        d = delta.detach().double()
        if self.sum_delta is None:
            self.sum_delta = torch.zeros_like(d)
        elif self.sum_delta.shape != d.shape:
            raise ValueError(f'text shift of shape {tuple(d.shape)} after shifts of shape '
                             f'{tuple(self.sum_delta.shape)}')
        self.sum_delta += d.to(self.sum_delta.device)
        self.sum_sq += float(d.pow(2).sum())
        self.indices.append(int(index))

    @property
    def count(self) -> int:
        return len(self.indices)

    def save(self, path: Path) -> None:
        """Atomic write (a reader never sees half a file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f'{path.name}.{os.getpid()}.tmp')
        with open(tmp, 'wb') as fh:
            np.savez(fh, sum_delta=self.sum_delta.cpu().numpy(), sum_sq=np.float64(self.sum_sq),
                     indices=np.asarray(self.indices, dtype=np.int64))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> 'TextSums':
        try:
            with np.load(path) as z:
                return cls(torch.from_numpy(z['sum_delta'].astype(np.float64)), float(z['sum_sq']),
                           [int(i) for i in z['indices']])
        except (OSError, ValueError, KeyError) as err:
            raise CorruptFileError(f'cannot read the text-shift sums {path}: {err}', where=str(path),
                                   fix='re-run the test with --no-resume to record the run again') from None

    @classmethod
    def combine(cls, parts: Iterable['TextSums']) -> 'TextSums':
        """The sums over several disjoint sets of samples (shards, sessions)."""
        out = cls()
        for p in parts:
            if p.sum_delta is None:
                continue
            if out.sum_delta is None:
                out.sum_delta = p.sum_delta.clone().cpu()
            elif out.sum_delta.shape != p.sum_delta.shape:
                raise ValueError(f'sums of shapes {tuple(out.sum_delta.shape)} and {tuple(p.sum_delta.shape)}')
            else:
                out.sum_delta += p.sum_delta.cpu()
            out.sum_sq += p.sum_sq
            out.indices += p.indices
        if len(set(out.indices)) != len(out.indices):
            raise ValueError('the sums count some samples twice')
        return out

    def variance(self) -> dict[str, float] | None:
        """``{'variance': V, 'mean_sq_shift': MS, 'samples': N}`` (None without samples)."""
        n = self.count
        if not n:
            return None
        c = self.sum_delta.shape[0]
        ms = self.sum_sq / (n * c)
        mean_sq_of_mean = float((self.sum_delta / n).pow(2).sum()) / c
        v = ms - mean_sq_of_mean
        if v < -1e-9 * ms:  # V >= 0 for sums of the same samples: only rounding may cross zero
            raise ValueError(f'inconsistent text-shift sums: variance {v} < 0 (mean squared shift {ms})')
        return dict(variance=max(v, 0.0), mean_sq_shift=ms, samples=n)
