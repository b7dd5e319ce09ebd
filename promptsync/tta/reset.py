"""Reset policies (``RESET_POLICIES``): when the adapted prompts and optimizer state go back to the start.

Episodic methods (TPT, PromptAlign, PromptSync) reset after every sample; online methods keep their
state across the stream. The policy snapshots the learner, the optimizer and the grad scaler once, at
bind time, and restores all three exactly.
"""
from __future__ import annotations

import copy

import torch

from promptsync.registry import RESET_POLICIES


class ResetPolicy:
    """Base: keeps the initial state and knows how to put it back."""

    def bind(self, learner, optimizer: torch.optim.Optimizer | None, scaler=None) -> None:
        self.learner, self.optimizer, self.scaler = learner, optimizer, scaler
        self._learner_state = learner.snapshot()
        self._optim_state = copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None
        self._scaler_state = copy.deepcopy(scaler.state_dict()) if scaler is not None else None
        self.n_resets = 0

    def reset(self) -> None:
        self.learner.restore(self._learner_state)
        if self.optimizer is not None:
            self.optimizer.load_state_dict(copy.deepcopy(self._optim_state))
            self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None and self._scaler_state:
            self.scaler.load_state_dict(copy.deepcopy(self._scaler_state))
        self.n_resets += 1

    def should_reset(self, samples_seen: int) -> bool:
        return False

    def after_sample(self, samples_seen: int) -> bool:
        if self.should_reset(samples_seen):
            self.reset()
            return True
        return False


@RESET_POLICIES.register_module()
class EpisodicReset(ResetPolicy):
    """Reset after every sample: each test image starts from the same prompts (TPT)."""

    def should_reset(self, samples_seen: int) -> bool:
        return True


@RESET_POLICIES.register_module()
class NoReset(ResetPolicy):
    """Never reset: prompts keep adapting along the stream (online TTA; results depend on order)."""


@RESET_POLICIES.register_module()
class ResetEvery(ResetPolicy):
    """Reset after every ``n`` samples."""

    def __init__(self, n: int):
        if n < 1:
            raise ValueError(f'ResetEvery needs n >= 1, got {n}')
        self.n = n

    def should_reset(self, samples_seen: int) -> bool:
        return samples_seen % self.n == 0
