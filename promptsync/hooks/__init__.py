"""Hooks (``HOOKS``, also known as ``TTA_HOOKS``): one family on mmengine's ``Hook`` for every loop and TTA stage."""
from .base import TTA_STAGES, Hook, HookList, TTAHook
from .progress import Progress, ProgressBarHook
from .adaptation_recorder import AdaptationRecorder  # noqa: F401  (registers the hook in HOOKS)

__all__ = ['TTA_STAGES', 'Hook', 'HookList', 'TTAHook', 'Progress', 'ProgressBarHook']
