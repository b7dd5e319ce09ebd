"""EuroSAT (Helber et al., 2019): 10 land-use classes of Sentinel-2 RGB tiles, 8,100 test images in CoOp's split.
Class names are CoOp's ``NEW_CLASSNAMES`` ("Annual Crop Land", "Highway or Road", ...).

Accepted layouts (``root`` may be the data root or the dataset folder)::

    DATA/eurosat/2750/<Class>/<Class>_<k>.jpg + DATA/eurosat/split_zhou_EuroSAT.json   (CoOp)
    DATA/eurosat/[2750/]<Class>/<Class>_<k>.jpg + DATA/data_splits/split_zhou_EuroSAT.json (TPT)
"""
from __future__ import annotations

from promptsync.registry import DATASETS

from .coop_split import CoOpSplitDataset


@DATASETS.register_module()
class EuroSAT(CoOpSplitDataset):

    name = 'EuroSAT'
    key = 'eurosat'
    dirnames = ('eurosat',)
    image_dir = '2750'
    split_file = 'split_zhou_EuroSAT.json'
    split_url = 'https://drive.google.com/file/d/1Ip7yaCWFi0eaOFUGga0lUdVi_DDQth1o/view?usp=sharing'
    num_known_classes = 10
    # CoOp's NEW_CNAMES: a split file written with the folder names is read as well (ids stay the file's names)
    aliases = {'AnnualCrop': 'Annual Crop Land', 'HerbaceousVegetation': 'Herbaceous Vegetation Land',
               'Highway': 'Highway or Road', 'Industrial': 'Industrial Buildings', 'Pasture': 'Pasture Land',
               'PermanentCrop': 'Permanent Crop Land', 'Residential': 'Residential Buildings',
               'SeaLake': 'Sea or Lake'}
    download = ('download the RGB EuroSAT.zip (http://madm.dfki.de/files/sentinel/EuroSAT.zip; see '
                'https://github.com/phelber/EuroSAT) and extract it into DATA/eurosat/ so that '
                'DATA/eurosat/2750/AnnualCrop/AnnualCrop_1.jpg exists')
