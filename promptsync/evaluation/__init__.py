"""Evaluation: metrics (``METRICS``), prediction records and result files."""
from .calibration import ExpectedCalibrationError, PredictionCollapse
from .metrics import Accuracy, MeanPerClassAccuracy, compute_metrics
from .per_class import per_class_accuracy
from .predictions import PredictionTable, PredictionWriter, read_records, to_record

__all__ = ['Accuracy', 'MeanPerClassAccuracy', 'ExpectedCalibrationError', 'PredictionCollapse', 'compute_metrics', 'per_class_accuracy',
           'PredictionTable', 'PredictionWriter', 'read_records', 'to_record']
