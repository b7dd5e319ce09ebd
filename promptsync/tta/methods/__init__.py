"""TTA methods (``TTA_METHODS``): how a batch of test samples becomes predictions.

Episodic (reset after every image): ``ZeroShot``, ``EpisodicTTA`` (TPT, C-TPT, MaPLe+TPT, PromptAlign, PromptSync:
configs differ in losses only), ``ConditionedEpisodicTTA`` (TPT+CoCoOp), ``Zero``, ``MTA``, ``TPS``. Online (state
carried across the stream, ``stateful = True``): ``TDA``, ``DPE``.
"""
from .base import PerSampleMethod, TTAMethod
from .conditioned_episodic import ConditionedEpisodicTTA
from .dpe import DPE
from .episodic import EpisodicTTA
from .mean_shift import MTA
from .prototype_shift import TPS
from .tda import TDA
from .zero_shot import ZeroShot
from .zero_vote import Zero

__all__ = ['TTAMethod', 'PerSampleMethod', 'EpisodicTTA', 'ConditionedEpisodicTTA', 'ZeroShot', 'Zero', 'MTA', 'TPS',
           'TDA', 'DPE']
