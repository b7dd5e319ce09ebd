"""TTA methods (``TTA_METHODS``): how a batch of test samples becomes predictions."""
from .base import TTAMethod
from .dpe import DPE
from .episodic import EpisodicTTA
from .prototype_shift import TPS
from .tda import TDA
from .zero_shot import ZeroShot
from .zero_vote import Zero
from .mean_shift import MTA

__all__ = ['TTAMethod', 'EpisodicTTA', 'TDA', 'ZeroShot']
