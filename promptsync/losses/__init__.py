"""TTA losses (``LOSSES``); a method combines them from a config list of ``dict(type=..., weight=...)``."""
from .alignment import ClassAwarePrototypeAlignmentLoss, DistributionAlignmentLoss
from .base import TTALoss, WeightedLossSum
from .discrimination import PrototypeDiscriminationLoss
from .entropy import MarginalEntropyLoss, MeanViewEntropyLoss, marginal_entropy

__all__ = ['TTALoss', 'WeightedLossSum', 'MarginalEntropyLoss', 'MeanViewEntropyLoss', 'marginal_entropy',
           'DistributionAlignmentLoss', 'ClassAwarePrototypeAlignmentLoss', 'PrototypeDiscriminationLoss']
