"""Caltech101 (Fei-Fei et al., 2004) as in CoOp: 100 object classes (``BACKGROUND_Google`` and ``Faces_easy``
dropped), 2,465 test images in CoOp's split. Class names are CoOp's: ``airplanes`` -> airplane, ``Faces`` ->
face, ``Leopards`` -> leopard, ``Motorbikes`` -> motorbike, underscores as spaces.

Accepted layouts (``root`` may be the data root or the dataset folder)::

    DATA/caltech-101/101_ObjectCategories/<class>/<image>.jpg + DATA/caltech-101/split_zhou_Caltech101.json (CoOp)
    DATA/Caltech101/[101_ObjectCategories/]<class>/<image>.jpg + DATA/data_splits/split_zhou_Caltech101.json (TPT)
"""
from __future__ import annotations

from promptsync.registry import DATASETS

from .coop_split import CoOpSplitDataset


@DATASETS.register_module()
class Caltech101(CoOpSplitDataset):

    name = 'Caltech101'
    key = 'caltech101'
    dirnames = ('caltech-101', 'Caltech101')
    image_dir = '101_ObjectCategories'
    split_file = 'split_zhou_Caltech101.json'
    split_url = 'https://drive.google.com/file/d/1hyarUivQE36mY6jSomru6Fjd-JzwcCzN/view?usp=sharing'
    num_known_classes = 100
    # CoOp's NEW_CNAMES: a split file written with the folder names is read as well (ids stay the file's names)
    aliases = {'airplanes': 'airplane', 'Faces': 'face', 'Leopards': 'leopard', 'Motorbikes': 'motorbike'}
    download = ('download http://www.vision.caltech.edu/Image_Datasets/Caltech101/101_ObjectCategories.tar.gz and '
                'extract it into DATA/caltech-101/ so that DATA/caltech-101/101_ObjectCategories/accordion/'
                'image_0001.jpg exists')
