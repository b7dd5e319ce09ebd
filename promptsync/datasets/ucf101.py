"""UCF101 (Soomro et al., 2012) as in CoOp: the middle frame of each video, 101 actions, 3,783 test images in
CoOp's split. Class names are CoOp's (``ApplyEyeMakeup`` -> "Apply Eye Makeup").

Accepted layouts (``root`` may be the data root or the dataset folder)::

    DATA/ucf101/UCF-101-midframes/<Action>/<video>.jpg + DATA/ucf101/split_zhou_UCF101.json  (CoOp)
    DATA/UCF101/[UCF-101-midframes/]<Action>/<video>.jpg + DATA/data_splits/split_zhou_UCF101.json (TPT)
"""
from __future__ import annotations

from promptsync.registry import DATASETS

from .coop_split import CoOpSplitDataset


@DATASETS.register_module()
class UCF101(CoOpSplitDataset):

    name = 'UCF101'
    key = 'ucf101'
    dirnames = ('ucf101', 'UCF101')
    image_dir = 'UCF-101-midframes'
    split_file = 'split_zhou_UCF101.json'
    split_url = 'https://drive.google.com/file/d/1I0S0q91hJfsV9Gf4xDIjgDq4AqBNJb1y/view?usp=sharing'
    num_known_classes = 101
    download = ('download UCF-101-midframes.zip (CoOp, https://drive.google.com/file/d/'
                '10Jqome3vtUA2keJkNanAiFpgbyC9Hc2O/view?usp=sharing) and extract it into DATA/ucf101/ so that '
                'DATA/ucf101/UCF-101-midframes/Apply_Eye_Makeup/v_ApplyEyeMakeup_g01_c01.jpg exists')
