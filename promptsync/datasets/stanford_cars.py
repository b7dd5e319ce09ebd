"""Stanford Cars (Krause et al., 2013): 196 car models, 8,041 test images in CoOp's split. The split's paths
(``cars_train/...``, ``cars_test/...``) are relative to the dataset folder itself.

Accepted layouts (``root`` may be the data root or the dataset folder)::

    DATA/stanford_cars/cars_{train,test}/<k>.jpg + DATA/stanford_cars/split_zhou_StanfordCars.json   (CoOp)
    DATA/StanfordCars/cars_{train,test}/<k>.jpg + DATA/data_splits/split_zhou_StanfordCars.json      (TPT)
"""
from __future__ import annotations

from promptsync.registry import DATASETS

from .coop_split import CoOpSplitDataset


@DATASETS.register_module()
class StanfordCars(CoOpSplitDataset):

    name = 'StanfordCars'
    key = 'stanford_cars'
    dirnames = ('stanford_cars', 'StanfordCars')
    image_dir = ''
    split_file = 'split_zhou_StanfordCars.json'
    split_url = 'https://drive.google.com/file/d/1ObCFbaAgVu0I-k_Au-gIUcefirdAuizT/view?usp=sharing'
    num_known_classes = 196
    download = ('download http://ai.stanford.edu/~jkrause/car196/cars_train.tgz and .../car196/cars_test.tgz and '
                'extract them into DATA/stanford_cars/ so that DATA/stanford_cars/cars_test/00001.jpg exists')
