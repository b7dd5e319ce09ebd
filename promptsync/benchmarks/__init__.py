"""Embedded offline benchmarks (procedurally generated, no downloads); their datasets register in ``DATASETS``."""
from . import shapes  # noqa: F401
