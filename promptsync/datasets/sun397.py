"""SUN397 (Xiao et al., 2010): 397 scene categories, 19,850 test images in CoOp's split. Class names are
CoOp's (``/a/apartment_building/outdoor`` -> "outdoor apartment building").

Accepted layouts (``root`` may be the data root or the dataset folder)::

    DATA/sun397/SUN397/<letter>/<scene>/<image>.jpg + DATA/sun397/split_zhou_SUN397.json   (CoOp)
    DATA/SUN397/<letter>/<scene>/<image>.jpg + DATA/data_splits/split_zhou_SUN397.json     (TPT)
"""
from __future__ import annotations

from promptsync.registry import DATASETS

from .coop_split import CoOpSplitDataset


@DATASETS.register_module()
class SUN397(CoOpSplitDataset):

    name = 'SUN397'
    key = 'sun397'
    dirnames = ('sun397', 'SUN397')
    image_dir = 'SUN397'
    split_file = 'split_zhou_SUN397.json'
    split_url = 'https://drive.google.com/file/d/1y2RD81BYuiyvebdN-JymPfyWYcd8_MUq/view?usp=sharing'
    num_known_classes = 397
    download = ('download http://vision.princeton.edu/projects/2010/SUN/SUN397.tar.gz and extract it into '
                'DATA/sun397/ so that DATA/sun397/SUN397/a/abbey/sun_aaalbzqrimafwbiv.jpg exists')
