"""TTA hooks: stage callbacks of the TTA loop (``TTA_HOOKS``)."""
from .base import STAGES, HookList, TTAHook
from .progress import ProgressBarHook

__all__ = ['STAGES', 'HookList', 'TTAHook', 'ProgressBarHook']
