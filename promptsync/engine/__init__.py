"""Trainers (few-shot prompt learning); they register into ``promptsync.registry.TRAINERS`` here."""
from .fewshot import FewShotSubset, sample_few_shot
from .prompt_trainer import PromptTrainer
from .schedule import WarmupCosineLR, warmup_cosine_lr

__all__ = ['FewShotSubset', 'PromptTrainer', 'WarmupCosineLR', 'sample_few_shot', 'warmup_cosine_lr']
