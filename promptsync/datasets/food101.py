"""Food-101 (Bossard et al., 2014): 101 dishes, 30,300 test images in CoOp's split.

Accepted layouts (``root`` may be the data root or the dataset folder)::

    DATA/food-101/images/<dish>/<k>.jpg + DATA/food-101/split_zhou_Food101.json   (CoOp)
    DATA/Food101/images/<dish>/<k>.jpg + DATA/data_splits/split_zhou_Food101.json (TPT)
"""
from __future__ import annotations

from promptsync.registry import DATASETS

from .coop_split import CoOpSplitDataset


@DATASETS.register_module()
class Food101(CoOpSplitDataset):

    name = 'Food101'
    key = 'food101'
    dirnames = ('food-101', 'Food101')
    image_dir = 'images'
    split_file = 'split_zhou_Food101.json'
    split_url = 'https://drive.google.com/file/d/1QK0tGi096I0Ba6kggatX1ee6dJFIcEJl/view?usp=sharing'
    num_known_classes = 101
    download = ('download food-101.tar.gz from https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/ and '
                'extract it into DATA/ so that DATA/food-101/images/apple_pie/1005649.jpg exists')
