"""Datasets (``DATASETS``): sample lists + class names; data files under ``data/``."""
from .base import ClassificationDataset, Datum
from .image_folder import ImageFolder
from .imagenet_r import ImageNetR, WnidSubsetDataset
from .view_dataset import ViewDataset

__all__ = ['ClassificationDataset', 'Datum', 'ImageFolder', 'ImageNetR', 'WnidSubsetDataset', 'ViewDataset']
