"""TTA losses (``LOSSES``); a method combines them from a config list of ``dict(type=..., weight=...)``."""
from .base import TTALoss, WeightedLossSum
from .entropy import MarginalEntropyLoss, MeanViewEntropyLoss, marginal_entropy

__all__ = ['TTALoss', 'WeightedLossSum', 'MarginalEntropyLoss', 'MeanViewEntropyLoss', 'marginal_entropy']
