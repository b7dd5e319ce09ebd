"""Datasets (``DATASETS``): sample lists + class names; data files under ``data/``."""
from .base import ClassificationDataset, Datum, LabelSpace
from .image_folder import ImageFolder
from .imagenet_r import ImageNetR
from .wnid_folders import WnidSubsetDataset
from .view_dataset import ViewDataset

__all__ = ['ClassificationDataset', 'Datum', 'LabelSpace', 'ImageFolder', 'ImageNetR', 'WnidSubsetDataset', 'ViewDataset']
