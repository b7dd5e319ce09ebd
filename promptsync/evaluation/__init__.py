"""Evaluation: metrics (``METRICS``), prediction records and result files."""
from .calibration import ExpectedCalibrationError, PredictionCollapse
from .metrics import Accuracy, MeanPerClassAccuracy, compute_metrics
from .predictions import PredictionTable, PredictionWriter, read_records, to_record

__all__ = ['Accuracy', 'MeanPerClassAccuracy', 'ExpectedCalibrationError', 'PredictionCollapse', 'compute_metrics',
           'PredictionTable', 'PredictionWriter', 'read_records', 'to_record']
