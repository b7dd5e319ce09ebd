"""TTA methods (``TTA_METHODS``): how a batch of test samples becomes predictions."""
from .base import TTAMethod
from .episodic import EpisodicTTA
from .zero_shot import ZeroShot

__all__ = ['TTAMethod', 'EpisodicTTA', 'ZeroShot']
