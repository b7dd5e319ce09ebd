"""Describable Textures (Cimpoi et al., 2014): 47 texture classes, 1,692 test images in CoOp's split.

Accepted layouts (``root`` may be the data root or the dataset folder)::

    DATA/dtd/images/<texture>/<image>.jpg + DATA/dtd/split_zhou_DescribableTextures.json   (CoOp)
    DATA/DTD/images/<texture>/<image>.jpg + DATA/data_splits/split_zhou_DescribableTextures.json (TPT)
"""
from __future__ import annotations

from promptsync.registry import DATASETS

from .coop_split import CoOpSplitDataset


@DATASETS.register_module()
class DTD(CoOpSplitDataset):

    name = 'DTD'
    key = 'dtd'
    dirnames = ('dtd', 'DTD')
    image_dir = 'images'
    split_file = 'split_zhou_DescribableTextures.json'
    split_url = 'https://drive.google.com/file/d/1u3_QfB467jqHgNXC00UIzbLZRQCg2S7x/view?usp=sharing'
    num_known_classes = 47
    download = ('download https://www.robots.ox.ac.uk/~vgg/data/dtd/download/dtd-r1.0.1.tar.gz and extract it into '
                'DATA/ so that DATA/dtd/images/banded/banded_0002.jpg exists')
