"""TTA losses (``LOSSES``); a method combines them from a config list of ``dict(type=..., weight=...)``."""
from .alignment import ClassAwarePrototypeAlignmentLoss, DistributionAlignmentLoss
from .base import TTALoss, WeightedLossSum
from .discrimination import PrototypeDiscriminationLoss
from .dispersion import TextFeatureDispersionLoss, text_feature_dispersion
from .entropy import MarginalEntropyLoss, MeanViewEntropyLoss, marginal_entropy

__all__ = ['TTALoss', 'WeightedLossSum', 'MarginalEntropyLoss', 'MeanViewEntropyLoss', 'marginal_entropy',
           'DistributionAlignmentLoss', 'ClassAwarePrototypeAlignmentLoss', 'PrototypeDiscriminationLoss',
           'TextFeatureDispersionLoss', 'text_feature_dispersion']
