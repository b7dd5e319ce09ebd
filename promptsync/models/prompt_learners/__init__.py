"""Prompt learners (``PROMPT_LEARNERS``): own the learnable prompt tensors, produce ``Prompts``."""
from .base import PromptLearner, Prompts, TextPrompts, VisionPrompts
from .coop import CoOp
from .maple import MaPLe
from .templates import TemplatePrompts

__all__ = ['PromptLearner', 'Prompts', 'TextPrompts', 'VisionPrompts', 'CoOp', 'MaPLe', 'TemplatePrompts']
