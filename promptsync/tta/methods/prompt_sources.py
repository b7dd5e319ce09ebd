"""Where the fast engine's prompts come from: the learner itself (one sample), or per-sample copies (a batch).

``OwnPrompts`` adapts one sample on the learner's own tensors with the method's optimizer and grad scaler, so
every reset policy (episodic or online) works as in the reference loop. ``PromptCopies`` gives each of ``B``
samples its own copy of the learnable tensors, stacked ``[B, *shape]``, with a fresh optimizer over the stacks:
for an element-wise optimizer (SGD, Adam, AdamW, ...) and a loss that is a sum of per-sample terms, each copy
follows exactly the trajectory it would alone — which is what an episodic reset (every sample from the initial
prompts and a fresh optimizer state) asks for.

Under fp16 autocast a sample alone has a grad scaler that skips its step when its gradients overflow. The copies
scale the summed loss by the same initial scale, unscale, and check each copy's gradients on their own: a copy
that overflowed keeps its pre-step tensors, which is what a skipped step leaves — exact for one step of one phase
(the plan asks for that; the scale a sample would carry further is reset with it).
"""
from __future__ import annotations

import torch
from torch.func import functional_call

from promptsync.registry import OPTIMIZERS

#: optimizers whose update of an element depends on that element's gradient history only
ELEMENTWISE_OPTIMIZERS = frozenset({'SGD', 'Adam', 'AdamW', 'Adamax', 'Adagrad', 'RMSprop', 'NAdam', 'RAdam'})


class OwnPrompts:
    """One sample, the learner's own parameters (a ``batch`` of one)."""

    size = 1

    def __init__(self, method):
        self.method = method
        self.optimizer, self.scaler = method.optimizer, method.scaler

    @property
    def at_initial(self) -> bool:
        return self.method.at_initial

    def prompts(self) -> list:
        return [self.method.learner()]

    def sample_params(self, b: int) -> list[torch.Tensor]:
        return list(self.method.params)

    def frozen(self, frozen: list) -> list:
        return list(frozen)

    def backward(self, total: torch.Tensor, frozen: list) -> None:
        """The reference loop's backward (with its grad scaler)."""
        self.scaler.scale(total).backward()
        for p in frozen:  # this phase leaves these tensors (and their optimizer state) alone
            p.grad = None

    def step(self) -> None:
        self.scaler.step(self.optimizer)
        self.scaler.update()

    def stepped(self) -> None:
        self.method.at_initial = False


class PromptCopies:
    """``size`` samples, each with its own copy of the learner's learnable tensors (stacked along dim 0)."""

    def __init__(self, method, size: int, initial: dict[str, torch.Tensor] | None = None):
        """``initial``: per-copy starting values ``{name: [size, *shape]}`` (default: ``size`` copies of the learner's
        current tensors); ConditionedEpisodicTTA starts each copy from its image's conditioned context."""
        self.method, self.size = method, size
        self.names = list(method.param_names)
        initial = dict(initial or {})
        if set(initial) - set(self.names):
            raise KeyError(f'initial values for {sorted(set(initial) - set(self.names))}, which are not learnable '
                           f'tensors of the learner ({self.names})')
        self.stacked = {}
        for name, p in zip(self.names, method.params):
            start = initial[name] if name in initial else p.detach().unsqueeze(0).repeat(size, *([1] * p.dim()))
            if tuple(start.shape) != (size, *p.shape):
                raise ValueError(f"initial '{name}' has shape {tuple(start.shape)}, expected {(size, *p.shape)}")
            self.stacked[name] = start.detach().to(p.dtype).clone().requires_grad_(True)
        self.name_of = {id(p): name for name, p in zip(self.names, method.params)}
        self.optimizer = OPTIMIZERS.build(dict(method.optimizer_cfg),
                                          default_args=dict(params=list(self.stacked.values())))
        self.scaler = torch.amp.GradScaler(method.device.type, enabled=False)
        self.loss_scale = method.initial_loss_scale  # None without fp16 autocast
        self.overflowed = torch.zeros(size, dtype=torch.bool)
        self.at_initial = True

    def backward(self, total: torch.Tensor, frozen: list) -> None:
        """Gradients of the summed loss for every copy (the frozen tensors' dropped)."""
        (total if self.loss_scale is None else total * self.loss_scale).backward()
        for p in self.frozen(frozen):
            p.grad = None

    def step(self) -> None:
        """One optimizer step of every copy; under a loss scale, an overflowed copy keeps its tensors."""
        if self.loss_scale is None:
            self.optimizer.step()
            return
        inv = torch.tensor(self.loss_scale, dtype=torch.float64).reciprocal().float()
        finite = torch.ones(self.size, dtype=torch.bool, device=self.method.device)
        for t in self.stacked.values():
            if t.grad is not None:
                t.grad.mul_(inv.to(t.grad.device))
                finite &= torch.isfinite(t.grad.reshape(self.size, -1)).all(dim=1)
        bad = ~finite
        kept = {n: t.detach()[bad].clone() for n, t in self.stacked.items()} if bool(bad.any()) else None
        if kept is not None:
            for t in self.stacked.values():
                if t.grad is not None:
                    t.grad[bad] = 0
        self.optimizer.step()
        if kept is not None:
            with torch.no_grad():
                for n, t in self.stacked.items():
                    t[bad] = kept[n]
            self.overflowed |= bad.cpu()

    def prompts(self) -> list:
        learner = self.method.learner
        return [functional_call(learner, {n: t[b] for n, t in self.stacked.items()}, ()) for b in range(self.size)]

    def sample_params(self, b: int) -> list[torch.Tensor]:
        return [self.stacked[n][b] for n in self.names]

    def frozen(self, frozen: list) -> list:
        return [self.stacked[self.name_of[id(p)]] for p in frozen]

    def stepped(self) -> None:
        self.at_initial = False
