"""Datasets (``DATASETS``): sample lists + class names; data files under ``data/``."""
from .base import ClassificationDataset, Datum, LabelSpace
from .caltech101 import Caltech101
from .coop_split import CoOpSplitDataset
from .dtd import DTD
from .eurosat import EuroSAT
from .fgvc_aircraft import FGVCAircraft
from .flowers102 import Flowers102
from .food101 import Food101
from .image_folder import ImageFolder
from .imagenet import ImageNet
from .imagenet_a import ImageNetA
from .imagenet_r import ImageNetR
from .imagenet_sketch import ImageNetSketch
from .imagenet_v2 import ImageNetV2
from .oxford_pets import OxfordPets
from .stanford_cars import StanfordCars
from .sun397 import SUN397
from .ucf101 import UCF101
from .wnid_folders import WnidSubsetDataset
from .view_dataset import ViewDataset

#: the 10 cross-dataset targets (CoOp layout + split files), by their config / data-file key
CROSS_DATASETS = {'caltech101': Caltech101, 'oxford_pets': OxfordPets, 'stanford_cars': StanfordCars,
                  'flowers102': Flowers102, 'food101': Food101, 'fgvc_aircraft': FGVCAircraft, 'sun397': SUN397,
                  'dtd': DTD, 'eurosat': EuroSAT, 'ucf101': UCF101}

__all__ = ['ClassificationDataset', 'Datum', 'LabelSpace', 'ImageFolder', 'ImageNet', 'ImageNetA', 'ImageNetR',
           'ImageNetSketch', 'ImageNetV2', 'WnidSubsetDataset', 'ViewDataset', 'CoOpSplitDataset', 'CROSS_DATASETS',
           'Caltech101', 'OxfordPets', 'StanfordCars', 'Flowers102', 'Food101', 'FGVCAircraft', 'SUN397', 'DTD',
           'EuroSAT', 'UCF101']
