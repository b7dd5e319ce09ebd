"""Datasets (``DATASETS``): sample lists + class names; data files under ``data/``."""
from .base import ClassificationDataset, Datum, LabelSpace
from .image_folder import ImageFolder
from .imagenet import ImageNet
from .imagenet_a import ImageNetA
from .imagenet_r import ImageNetR
from .imagenet_sketch import ImageNetSketch
from .imagenet_v2 import ImageNetV2
from .wnid_folders import WnidSubsetDataset
from .view_dataset import ViewDataset

__all__ = ['ClassificationDataset', 'Datum', 'LabelSpace', 'ImageFolder', 'ImageNet', 'ImageNetA', 'ImageNetR',
           'ImageNetSketch', 'ImageNetV2', 'WnidSubsetDataset', 'ViewDataset']
