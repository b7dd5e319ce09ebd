"""Prompt learners (``PROMPT_LEARNERS``): own the learnable prompt tensors, produce ``Prompts``."""
from .base import PromptLearner, Prompts, TextPrompts, VisionPrompts
from .cocoop import CoCoOp
from .coop import CoOp
from .ivlp import IVLP
from .maple import MaPLe
from .templates import TemplatePrompts
from .vpt import VPT

__all__ = ['PromptLearner', 'Prompts', 'TextPrompts', 'VisionPrompts', 'CoOp', 'MaPLe', 'TemplatePrompts', 'IVLP', 'VPT',
           'CoCoOp']
