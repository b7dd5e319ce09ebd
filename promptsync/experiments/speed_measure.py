"""The measurements of a speed benchmark: peak memory, FLOPs, latency statistics, and the selected views.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``; on the CPU the peak
resident set of the process (``VmHWM`` of ``/proc/self/status``, whose high-water mark Linux resets to the current
RSS when ``5`` is written to ``/proc/self/clear_refs``; elsewhere the lifetime peak ``ru_maxrss``, which cannot be
reset). FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` around the work of one batch, forward and backward.
"""
from __future__ import annotations

import math
import resource
import sys
from typing import Callable, Sequence

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

from promptsync.hooks import Hook

MB = 2 ** 20


class PeakMemory:
    """``reset()`` before a measured stretch, ``peak_mb()`` after it."""

    def __init__(self, device: torch.device):
        self.device = torch.device(device)
        self.cuda = self.device.type == 'cuda'
        self.resettable = self.cuda or self._clear_refs()

    @property
    def kind(self) -> str:
        if self.cuda:
            return 'cuda max_memory_allocated'
        return 'cpu peak RSS (VmHWM, reset per mode)' if self.resettable else 'cpu peak RSS since the process started'

    @staticmethod
    def _clear_refs() -> bool:
        try:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')
            return True
        except OSError:
            return False

    def reset(self) -> None:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.device)
        elif self.resettable:
            self._clear_refs()

    def current_mb(self) -> float:
        """What is held now (CUDA: allocated tensors; CPU: the resident set): the baseline of a mode's peak."""
        if self.cuda:
            torch.cuda.synchronize(self.device)
            return torch.cuda.memory_allocated(self.device) / MB
        try:
            with open('/proc/self/status') as f:
                for line in f:
                    if line.startswith('VmRSS:'):
                        return int(line.split()[1]) * 1024 / MB
        except OSError:
            pass
        return float('nan')

    def peak_mb(self) -> float:
        if self.cuda:
            torch.cuda.synchronize(self.device)
            return torch.cuda.max_memory_allocated(self.device) / MB
        if self.resettable:
            with open('/proc/self/status') as f:
                for line in f:
                    if line.startswith('VmHWM:'):
                        return int(line.split()[1]) * 1024 / MB
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kB on Linux, bytes on macOS
        return peak / MB if sys.platform == 'darwin' else peak * 1024 / MB


class _GlobalOnly:
    """Stands in for ``FlopCounterMode``'s module tracker: every FLOP counts in ``'Global'``."""
    parents = frozenset({'Global'})

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> bool:
        return False


def _cpu_flash_flop(query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    return sdpa_flop_count(query_shape, key_shape, value_shape)


def _cpu_flash_backward_flop(grad_out_shape, query_shape, key_shape, value_shape, *args, **kwargs) -> int:
    return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)


def _cpu_attention_formulas() -> dict:
    """The CPU kernels of ``scaled_dot_product_attention``, which torch's FLOP registry lacks (it has the CUDA
    ones: flash, memory-efficient, cuDNN), with the registry's own sdpa formulas."""
    aten = torch.ops.aten
    if not hasattr(aten, '_scaled_dot_product_flash_attention_for_cpu'):
        return {}
    return {aten._scaled_dot_product_flash_attention_for_cpu: _cpu_flash_flop,
            aten._scaled_dot_product_flash_attention_for_cpu_backward: _cpu_flash_backward_flop}


class TotalFlopCounter(FlopCounterMode):
    """``FlopCounterMode`` without its per-module breakdown, plus the CPU attention kernels. Its module tracker
    hooks the inputs of every module for the backward pass, which fails under ``torch.func`` transforms
    (``functional_call`` over per-sample prompt copies: "Expected gradient function to be set"); the total needs
    no tracker."""

    def __init__(self):
        super().__init__(display=False, custom_mapping=_cpu_attention_formulas())
        self.mod_tracker = _GlobalOnly()


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs of everything ``fn`` runs (forward and backward: the counter sees every dispatched matmul/conv).

    ``nn.MultiheadAttention``'s inference fast path (no grad, eval: one fused ``_native_multi_head_attention``
    op, which the counter does not know) is turned off meanwhile, so that its projections and attention count.
    """
    mha = getattr(torch.backends, 'mha', None)
    fast = mha.get_fastpath_enabled() if mha is not None else None
    if mha is not None:
        mha.set_fastpath_enabled(False)
    try:
        with TotalFlopCounter() as counter:
            fn()
    finally:
        if mha is not None:
            mha.set_fastpath_enabled(fast)
    return int(counter.get_total_flops())


def latency_stats(per_img_s: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(per_img_s, dtype=np.float64) * 1000.0
    return dict(ms_per_img_median=float(np.median(ms)), ms_per_img_p95=float(np.percentile(ms, 95)),
                ms_per_img_mean=float(ms.mean()))


def sync(device: torch.device) -> None:
    if device.type == 'cuda':
        torch.cuda.synchronize(device)


class SelectionRecorder(Hook):
    """Records ``ctx.selected`` of every sample at each selection (after the other hooks: lowest priority)."""

    batch_safe = True  # reads its own sample's context only
    priority = 'LOWEST'

    def __init__(self):
        self.enabled = False
        self.selected: dict[int, list[list[int]]] = {}

    def after_selection(self, runner, ctx) -> None:
        if self.enabled and ctx.selected is not None:
            self.selected.setdefault(int(ctx.index), []).append([int(i) for i in ctx.selected.flatten().tolist()])


def compare_logits(ref: dict[int, torch.Tensor], got: dict[int, torch.Tensor]) -> dict:
    """Top-1 agreement and the largest absolute difference of the fp32 logits of the samples both have."""
    common = sorted(set(ref) & set(got))
    same_top1 = all(int(ref[i].argmax()) == int(got[i].argmax()) for i in common) and len(common) == len(ref)
    diffs = [(ref[i].float() - got[i].float()).abs().max().item() for i in common]
    finite = all(math.isfinite(d) for d in diffs)
    return dict(same_top1=same_top1, max_abs_logit_diff=max(diffs, default=0.0) if finite else None)
