"""High-level entry points used by ``tools/``."""
from .test import run_test, select_indices

__all__ = ['run_test', 'select_indices']
