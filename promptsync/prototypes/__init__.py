"""Offline prototypes: streaming per-class token statistics of a proxy source set, and their label mapping."""
from .accumulator import ClassStatsAccumulator, combine_classes
from .bank import PrototypeBank
from .builder import BankAccumulator
from .label_mapping import TargetPrototypes, map_prototypes

__all__ = ['BankAccumulator', 'ClassStatsAccumulator', 'combine_classes', 'PrototypeBank', 'TargetPrototypes', 'map_prototypes']
