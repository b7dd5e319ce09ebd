"""Oxford Flowers 102 (Nilsback & Zisserman, 2008): 102 flower species, 2,463 test images in CoOp's split.
Class names are those of CoOp's ``cat_to_name.json``.

Accepted layouts (``root`` may be the data root or the dataset folder)::

    DATA/oxford_flowers/jpg/image_<k>.jpg + DATA/oxford_flowers/split_zhou_OxfordFlowers.json   (CoOp)
    DATA/Flower102/jpg/image_<k>.jpg + DATA/data_splits/split_zhou_OxfordFlowers.json           (TPT)
"""
from __future__ import annotations

from promptsync.registry import DATASETS

from .coop_split import CoOpSplitDataset


@DATASETS.register_module()
class Flowers102(CoOpSplitDataset):

    name = 'Flowers102'
    key = 'flowers102'
    dirnames = ('oxford_flowers', 'Flower102')
    image_dir = 'jpg'
    split_file = 'split_zhou_OxfordFlowers.json'
    split_url = 'https://drive.google.com/file/d/1Pp0sRXzZFZq15zVOzKjKBu4A9i01nozT/view?usp=sharing'
    num_known_classes = 102
    download = ('download https://www.robots.ox.ac.uk/~vgg/data/flowers/102/102flowers.tgz and extract it into '
                'DATA/oxford_flowers/ so that DATA/oxford_flowers/jpg/image_00001.jpg exists')
