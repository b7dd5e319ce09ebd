"""Few-shot prompt learning pieces (``TRAINERS``): the trainer's step, schedule and resume state.

The epochs are run by the engine (:class:`promptsync.engine.loops.PromptTrainLoop`); the K-shot sampler lives with
the datasets (:mod:`promptsync.datasets.fewshot`).
"""
from .prompt_trainer import PromptTrainer
from .schedule import WarmupCosineLR, warmup_cosine_lr

__all__ = ['PromptTrainer', 'WarmupCosineLR', 'warmup_cosine_lr']
