"""``Zero`` (Farina et al., NeurIPS 2024, FarinaMatteo/zero): a majority vote of the most confident views.

Training-free and episodic: one no-grad forward of the ``V`` views (original + random crops), keep the
``int(V * ratio)`` lowest-entropy views, set the softmax temperature to zero (each kept view casts one vote for its
argmax class), sum the votes and predict the class with most votes. A tie at the top is broken greedily by the
remaining views, most confident first: the first whose argmax is one of the tied classes wins, and the winner gets
one extra vote (the official ``p_bar[pred] += 1``).

What the method emits (``SampleResult.logits``) is chosen so that the metrics read the vote:
``z_c = log(s_c + eps * q_c)`` with ``s`` the vote share (the official ``p_bar`` normalised, tie-break vote
included), ``q`` the mean softmax probability of the kept views and ``eps = UNVOTED_MASS``. Hence
``softmax(z) = (s + eps q) / (1 + eps)``: the vote share to within ``eps``, every logit finite, the top-1 is the vote's
winner, and classes with equal votes (e.g. no vote at all) are ranked by ``q`` rather than arbitrarily, so top-5 means
something. ECE therefore measures the calibration of the vote share.

The pure functions (:func:`confidence_order`, :func:`zero_vote`, :func:`vote_logits`) take tensors only; the
method calls them once per sample.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from promptsync.errors import ConfigError
from promptsync.registry import TTA_METHODS
from promptsync.tta.context import SampleResult
from promptsync.tta.selection import view_entropy

from .base import PerSampleMethod

#: probability mass (relative to 1) given to the confident views' mean probability on top of the vote share; it
#: keeps unvoted classes finite and ranks equal-vote classes; far below one vote's share (1 / (V * ratio + 1))
UNVOTED_MASS = 1e-6
#: ``ZeroVote.broken_by`` when no remaining view's argmax is a tied class (the tied class with the highest logit on
#: the most confident remaining view wins)
FALLBACK = -1


@dataclass(frozen=True)
class ZeroVote:
    """The outcome of one vote.

    votes: ``[C]`` float votes of the kept views (a view whose largest logit is shared splits its vote), plus one for
        the tie-break winner: the official ``p_bar``.
    pred: the predicted class.
    tied: the classes tied for the most votes before the break (one class = no tie).
    broken_by: the view whose argmax broke the tie, :data:`FALLBACK`, or ``None`` when there was no tie.
    """
    votes: torch.Tensor
    pred: int
    tied: tuple[int, ...]
    broken_by: int | None


def confidence_order(logits: torch.Tensor) -> torch.Tensor:
    """The views ``[V]`` sorted by the entropy of their softmax, most confident first (stable: equal entropies
    keep view order)."""
    return torch.argsort(view_entropy(logits), descending=False, stable=True)


def kept_views(n_views: int, ratio: float) -> int:
    """``int(V * ratio)``, the official count; an error when it keeps no view."""
    k = int(n_views * ratio)
    if k < 1:
        raise ConfigError(f'Zero keeps int(V * ratio) = int({n_views} * {ratio}) = 0 views: nothing votes',
                          where='tta.views.n_views / tta.ratio',
                          fix="use TPTViews with n_views=64 (Zero's setting) or a larger tta.ratio")
    return k


def zero_vote(logits: torch.Tensor, selected: torch.Tensor, remaining: torch.Tensor) -> ZeroVote:
    """The zero-temperature vote of the views ``selected`` of ``logits [V, C]``, a tie broken by ``remaining``
    (view indices, most confident first)."""
    rows = logits[selected].float()
    top = rows == rows.max(dim=1, keepdim=True).values   # the temperature -> 0 limit of softmax
    votes = (top.float() / top.sum(dim=1, keepdim=True)).sum(dim=0)
    tied = tuple(int(c) for c in torch.nonzero(votes == votes.max()).flatten())
    if len(tied) == 1:
        return ZeroVote(votes, tied[0], tied, None)
    tied_mask = torch.zeros(votes.numel(), dtype=torch.bool, device=votes.device)
    tied_mask[list(tied)] = True
    pred, broken_by = None, FALLBACK
    for view in remaining.tolist():
        choice = int(logits[view].argmax())
        if tied_mask[choice]:
            pred, broken_by = choice, view
            break
    if pred is None:  # the official code's intent (its mask `logit[~ties]` is a bitwise not of class ids)
        view = int(remaining[0]) if remaining.numel() else int(selected[0])
        pred = int(logits[view].float().masked_fill(~tied_mask, -math.inf).argmax())
    votes = votes.clone()
    votes[pred] += 1
    return ZeroVote(votes, pred, tied, broken_by)


def vote_logits(vote: ZeroVote, selected_logits: torch.Tensor, unvoted_mass: float = UNVOTED_MASS) -> torch.Tensor:
    """``[C]`` logits ``log(s + eps q)``: softmax = ``(s + eps q) / (1 + eps)`` with ``s`` the vote share and ``q``
    the mean softmax of the kept views (computed in log space: finite even where ``q`` underflows)."""
    share = vote.votes / vote.votes.sum()
    logp = selected_logits.float().log_softmax(dim=-1)
    log_q = torch.logsumexp(logp, dim=0) - math.log(logp.shape[0])
    return torch.logaddexp(share.log(), math.log(unvoted_mass) + log_q)


@TTA_METHODS.register_module()
class Zero(PerSampleMethod):
    """Args:
        ratio: share of the views that vote, ``gamma`` in the paper; 0.3 = the official code since its commit
            9737ffb (the paper's first version and the code before it: 0.1).
        unvoted_mass: ``eps`` of the emitted logits (module docstring).

    Hooks see ``after_forward`` (``ctx.logits`` of every view) and ``after_selection`` (``ctx.selected``: the voting
    views; a hook may replace them, the others then break ties in confidence order). ``summary()`` counts the
    samples, the ties and the ties no remaining view could break (``ties_fallback``).
    """

    def __init__(self, model, ratio: float = 0.3, unvoted_mass: float = UNVOTED_MASS, hooks=None, seed: int = 0,
                 resources=None):
        super().__init__(model, hooks, seed, resources)
        if isinstance(ratio, bool) or not (isinstance(ratio, (int, float)) and 0 < ratio <= 1):
            raise ConfigError(f'tta.ratio={ratio!r} must be a share in (0, 1]', where='tta.ratio',
                              fix='Zero: 0.3 (official code), 0.1 (first paper version)')
        if not (isinstance(unvoted_mass, float) and 0 < unvoted_mass <= 1e-3):
            raise ConfigError(f'tta.unvoted_mass={unvoted_mass!r} must be a float in (0, 1e-3]',
                              where='tta.unvoted_mass', fix=f'keep the default {UNVOTED_MASS}')
        self.ratio, self.unvoted_mass = float(ratio), unvoted_mass
        with torch.no_grad():
            self.text_features = model.text_features()
        self.samples = self.ties = self.ties_fallback = 0

    @torch.no_grad()
    def process_sample(self, views: torch.Tensor, label: int, index: int, path: str = '') -> SampleResult:
        ctx = self.begin_sample(views, label, index, self.text_features)
        order = confidence_order(ctx.logits)
        ctx.selected = order[:kept_views(ctx.n_views, self.ratio)]
        self.hooks.call('after_selection', ctx)
        remaining = order[~torch.isin(order, ctx.selected)]
        vote = zero_vote(ctx.logits, ctx.selected, remaining)
        self.samples += 1
        self.ties += len(vote.tied) > 1
        self.ties_fallback += vote.broken_by == FALLBACK
        logits = vote_logits(vote, ctx.selected_logits, self.unvoted_mass).cpu()
        result = SampleResult(index=index, label=label, logits=logits, path=path,
                              extra=dict(votes=vote.votes.cpu(), tied=vote.tied))
        self.hooks.call('after_predict', ctx, result)
        self.hooks.call('after_sample', ctx, result)
        return result

    def summary(self) -> dict:
        return dict(samples=self.samples, ratio=self.ratio, ties_broken=int(self.ties),
                    ties_fallback=int(self.ties_fallback))
