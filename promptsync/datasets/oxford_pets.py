"""Oxford-IIIT Pets (Parkhi et al., 2012): 37 cat and dog breeds, 3,669 test images in CoOp's split.

Accepted layouts (``root`` may be the data root or the dataset folder)::

    DATA/oxford_pets/images/<breed>_<k>.jpg + DATA/oxford_pets/split_zhou_OxfordPets.json     (CoOp)
    DATA/OxfordPets/[images/]<breed>_<k>.jpg + DATA/data_splits/split_zhou_OxfordPets.json   (TPT)
"""
from __future__ import annotations

from promptsync.registry import DATASETS

from .coop_split import CoOpSplitDataset


@DATASETS.register_module()
class OxfordPets(CoOpSplitDataset):

    name = 'OxfordPets'
    key = 'oxford_pets'
    dirnames = ('oxford_pets', 'OxfordPets')
    image_dir = 'images'
    split_file = 'split_zhou_OxfordPets.json'
    split_url = 'https://drive.google.com/file/d/1501r8Ber4nNKvmlFVQZ8SeUHTcdTTEqs/view?usp=sharing'
    num_known_classes = 37
    download = ('download https://www.robots.ox.ac.uk/~vgg/data/pets/data/images.tar.gz (and annotations.tar.gz) '
                'and extract them into DATA/oxford_pets/ so that DATA/oxford_pets/images/keeshond_34.jpg exists')
