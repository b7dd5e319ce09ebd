"""The synthetic shapes benchmark: 20 procedural object classes, a source and three shifted target domains."""
from .dataset import SyntheticShapes, class_names
from .render import DOMAINS, TARGET_DOMAINS

__all__ = ['SyntheticShapes', 'class_names', 'DOMAINS', 'TARGET_DOMAINS']
