"""Class-wise feature caches of training-free online TTA (TDA; reusable by DPE and other cache methods).

* :class:`ClassPriorityQueue`: per class, the ``capacity`` items with the lowest score (an entropy), each a key
  vector (an image feature) and optionally a value vector. TDA's ``update_cache`` rule (kdiAAA/TDA,
  ``tda_runner.py``): a class with a free slot takes the item; a full class takes it only when its score is
  *strictly* lower than the class's worst item, which it replaces; items stay sorted by score, ties in arrival
  order (Python's stable ``sorted``). The pseudo-label that picks the class is the caller's business.
* :class:`NegativeCache`: TDA's negative cache, a queue admitting a sample only when its normalised entropy lies
  strictly inside ``entropy_window``; its value is the mask of classes whose probability lies strictly inside
  ``mask_window``.
* :func:`affinity_logits`: ``alpha * exp(-beta * (1 - q k_i^T)) V``, the cache read-out (Tip-Adapter's kernel).

Everything is held in fixed-shape tensors (keys ``[C, K, E]``, scores ``[C, K]`` with ``+inf`` in empty slots,
counts ``[C]``), so that a queue's state saves and loads as it is (:meth:`ClassPriorityQueue.state_dict`).
"""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

#: the outcomes of :meth:`ClassPriorityQueue.push`, in the order of the ``outcomes`` counter tensor
OUTCOMES = ('added', 'replaced', 'rejected')


def affinity_logits(query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, alpha: float,
                    beta: float) -> torch.Tensor:
    """``alpha * sum_i exp(-beta * (1 - query . keys_i)) values_i``: ``query`` ``[E]``, keys ``[N, E]``, values
    ``[N, D]`` -> ``[D]`` (zeros when ``N == 0``). Keys and query are used as given (TDA does not re-normalise its
    averaged features)."""
    affinity = keys @ query
    return alpha * (torch.exp(-beta * (1.0 - affinity)) @ values)


class ClassPriorityQueue:
    """Up to ``capacity`` lowest-score items per class, sorted by score (lowest first, ties in arrival order).

    Args:
        num_classes: ``C``.
        capacity: ``K``, items kept per class (TDA: 3 positive, 2 negative "shots").
        key_dim: ``E``, the length of a key (an image feature).
        value_dim: ``D``, the length of an item's value vector; ``None`` = no values (the class is the value).
        value_dtype: dtype the values are stored in (e.g. ``torch.bool`` for masks).
        device: where the tensors live.
    """

    def __init__(self, num_classes: int, capacity: int, key_dim: int, value_dim: int | None = None,
                 value_dtype: torch.dtype = torch.float32, device: torch.device | str = 'cpu'):
        for name, n in (('num_classes', num_classes), ('capacity', capacity), ('key_dim', key_dim)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise ValueError(f'{name} must be an integer >= 1, got {n!r}')
        self.num_classes, self.capacity, self.key_dim, self.value_dim = num_classes, capacity, key_dim, value_dim
        self.keys = torch.zeros(num_classes, capacity, key_dim, device=device)
        self.scores = torch.full((num_classes, capacity), float('inf'), device=device)
        self.counts = torch.zeros(num_classes, dtype=torch.int64, device=device)
        self.values = (None if value_dim is None else
                       torch.zeros(num_classes, capacity, value_dim, dtype=value_dtype, device=device))
        self.outcomes = torch.zeros(len(OUTCOMES), dtype=torch.int64)  # pushes added / replaced / rejected

    # ------------------------------------------------------------------ update
    def push(self, cls: int, key: torch.Tensor, score: float | torch.Tensor,
             value: torch.Tensor | None = None) -> str:
        """Offer an item to class ``cls``; returns ``'added'``, ``'replaced'`` (the class's worst item dropped) or
        ``'rejected'`` (the class is full and ``score`` is not lower than its worst)."""
        if not 0 <= cls < self.num_classes:
            raise IndexError(f'class {cls} is outside 0..{self.num_classes - 1}')
        if (value is None) != (self.values is None):
            raise ValueError('a queue with values needs a value with every item, a queue without values none')
        if key.numel() != self.key_dim or (value is not None and value.numel() != self.value_dim):
            raise ValueError(f'an item needs a key of {self.key_dim} and a value of {self.value_dim} numbers, got '
                             f'{key.numel()} and {None if value is None else value.numel()}')
        s = torch.as_tensor(score, dtype=self.scores.dtype, device=self.scores.device).reshape(())
        if not bool(torch.isfinite(s)):
            raise ValueError(f'a cache score must be finite, got {float(s)} (non-finite logits upstream?)')
        n = int(self.counts[cls])
        if n < self.capacity:
            outcome = 'added'
        elif bool(s < self.scores[cls, n - 1]):
            outcome, n = 'replaced', n - 1               # the worst item (the last, sorted) is dropped
        else:
            self.outcomes[OUTCOMES.index('rejected')] += 1
            return 'rejected'
        pos = int((self.scores[cls, :n] <= s).sum())     # after the equal scores: ties keep arrival order
        rows = [self.keys, self.scores] + ([self.values] if self.values is not None else [])
        items = [key.reshape(-1), s] + ([value.reshape(-1)] if self.values is not None else [])
        for table, item in zip(rows, items):
            table[cls, pos + 1:n + 1] = table[cls, pos:n].clone()
            table[cls, pos] = item.to(table.dtype)
        self.counts[cls] = n + 1
        self.outcomes[OUTCOMES.index(outcome)] += 1
        return outcome

    # ------------------------------------------------------------------ read
    def valid(self) -> torch.Tensor:
        """``[C, K]``: True where a slot holds an item."""
        return torch.arange(self.capacity, device=self.counts.device)[None] < self.counts[:, None]

    def __len__(self) -> int:
        return int(self.counts.sum())

    def entries(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """``(keys [N, E], classes [N], values [N, D] or None)`` of the held items, class by class, lowest score
        first (the order of TDA's ``compute_cache_logits``)."""
        valid = self.valid()
        classes = torch.arange(self.num_classes, device=valid.device)[:, None].expand_as(valid)[valid]
        values = self.values[valid] if self.values is not None else None
        return self.keys[valid], classes, values

    def one_hot_logits(self, query: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
        """:func:`affinity_logits` with each item's value the one-hot of its class (TDA's positive cache), ``[C]``."""
        keys, classes, _ = self.entries()
        return affinity_logits(query, keys, F.one_hot(classes, self.num_classes).to(keys.dtype), alpha, beta)

    def value_logits(self, query: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
        """:func:`affinity_logits` with the items' own values, ``[D]``."""
        if self.values is None:
            raise ValueError('this queue holds no values; use one_hot_logits')
        keys, _, values = self.entries()
        return affinity_logits(query, keys, values.to(keys.dtype), alpha, beta)

    def stats(self) -> dict[str, int]:
        """Items held, classes holding one, and the push outcomes so far."""
        return dict(items=len(self), classes=int((self.counts > 0).sum()),
                    **{name: int(n) for name, n in zip(OUTCOMES, self.outcomes)})

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, torch.Tensor]:
        state = dict(keys=self.keys, scores=self.scores, counts=self.counts, outcomes=self.outcomes)
        if self.values is not None:
            state['values'] = self.values
        return {k: v.detach().cpu().clone() for k, v in state.items()}

    def load_state_dict(self, state: Mapping[str, torch.Tensor]) -> None:
        """Restore :meth:`state_dict`; a state of another shape or an inconsistent one is refused (ValueError)."""
        own = self.state_dict()
        if set(state) != set(own):
            raise ValueError(f'queue state has tensors {sorted(state)}, expected {sorted(own)}')
        for name, mine in own.items():
            got = state[name]
            if tuple(got.shape) != tuple(mine.shape) or got.dtype != mine.dtype:
                raise ValueError(f"queue state '{name}' is {got.dtype} {tuple(got.shape)}, expected {mine.dtype} "
                                 f'{tuple(mine.shape)} (another class count, capacity or feature width)')
        counts, scores = state['counts'], state['scores'].float()
        filled = torch.arange(self.capacity)[None] < counts[:, None]
        if (counts < 0).any() or (counts > self.capacity).any() or not torch.isfinite(scores[filled]).all() \
                or not torch.isinf(scores[~filled]).all() or (scores[:, 1:] < scores[:, :-1]).any():
            raise ValueError('queue state is inconsistent (counts outside 0..capacity, or scores not finite and '
                             'sorted in the held slots and +inf in the empty ones)')
        device = self.counts.device
        self.keys = state['keys'].to(device).clone()
        self.scores = state['scores'].to(device).clone()
        self.counts = state['counts'].to(device).clone()
        self.outcomes = state['outcomes'].cpu().clone()
        if self.values is not None:
            self.values = state['values'].to(device).clone()


class NegativeCache(ClassPriorityQueue):
    """TDA's negative cache: a :class:`ClassPriorityQueue` whose value is a class mask.

    A sample is admitted when ``entropy_window[0] < h < entropy_window[1]`` (``h`` its normalised entropy, strict
    bounds); its value is ``mask_window[0] < p_c < mask_window[1]`` per class (``p`` its class probabilities). The
    read-out :meth:`logits` is subtracted from the prediction: classes the cached, moderately uncertain samples
    gave some probability to are pushed down in proportion to the query's affinity to them.
    """

    def __init__(self, num_classes: int, capacity: int, key_dim: int, entropy_window: Sequence[float] = (0.2, 0.5),
                 mask_window: Sequence[float] = (0.03, 1.0), device: torch.device | str = 'cpu'):
        super().__init__(num_classes, capacity, key_dim, value_dim=num_classes, value_dtype=torch.bool, device=device)
        self.entropy_window = _window(entropy_window, 'entropy_window')
        self.mask_window = _window(mask_window, 'mask_window')

    def admits(self, normalised_entropy: float) -> bool:
        low, high = self.entropy_window
        return low < float(normalised_entropy) < high

    def mask(self, probs: torch.Tensor) -> torch.Tensor:
        low, high = self.mask_window
        return (probs > low) & (probs < high)

    def push_probs(self, cls: int, key: torch.Tensor, score: float | torch.Tensor, probs: torch.Tensor) -> str:
        """:meth:`push` with the value made from the sample's class probabilities ``probs`` ``[C]``."""
        return self.push(cls, key, score, self.mask(probs))

    def logits(self, query: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
        return self.value_logits(query, alpha, beta)


def _window(window: Sequence[float], name: str) -> tuple[float, float]:
    if isinstance(window, (str, bytes)) or len(window) != 2 or not float(window[0]) < float(window[1]):
        raise ValueError(f'{name} must be (lower, upper) with lower < upper, got {window!r}')
    return float(window[0]), float(window[1])
