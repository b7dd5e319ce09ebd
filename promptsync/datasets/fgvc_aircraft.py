"""FGVC-Aircraft (Maji et al., 2013): 100 aircraft variants, 3,333 test images. No split json: CoOp and TPT read
the official ``variants.txt`` (label = line number) and ``images_variant_<split>.txt`` (lines ``<id> <variant>``;
the image is ``images/<id>.jpg``). Class names and ids are the variant names.

Accepted layouts (``root`` may be the data root or the dataset folder)::

    DATA/fgvc_aircraft/{variants.txt, images_variant_{train,val,test}.txt, images/<id>.jpg}   (CoOp and TPT)
    DATA/fgvc-aircraft-2013b/data/{...the same files...}                                     (the archive in place)
"""
from __future__ import annotations

from pathlib import Path

from promptsync.registry import DATASETS

from .coop_split import LISTED, CoOpSplitDataset
from .resources import read_name_list

ARCHIVE = 'https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz'


@DATASETS.register_module()
class FGVCAircraft(CoOpSplitDataset):

    name = 'FGVCAircraft'
    key = 'fgvc_aircraft'
    dirnames = ('fgvc_aircraft', 'fgvc-aircraft-2013b/data')
    image_dir = 'images'
    split_file = 'variants.txt'
    num_known_classes = 100
    download = (f'download {ARCHIVE}, extract it, keep only its data/ folder and move it to DATA/fgvc_aircraft/ '
                'so that DATA/fgvc_aircraft/variants.txt and DATA/fgvc_aircraft/images/0034309.jpg exist')

    def _split_candidates(self, folder: Path) -> list[Path]:
        return [folder / 'variants.txt']

    def _split_help(self, folder: Path) -> str:
        return (f'variants.txt and images_variant_{{train,val,test}}.txt come with the official archive: '
                f'{self.download}')

    def _how_to_get(self, folder: Path) -> str:
        return self.download

    def _source_help(self) -> str:
        return f'the official variants.txt of {ARCHIVE}'

    def _layout(self, folders: list[Path]) -> str:
        return '\n'.join(f'  {f}/variants.txt, {f}/images_variant_{{train,val,test}}.txt, {f}/images/<id>.jpg'
                         for f in folders[:-1])

    def _read_split(self, path: Path) -> tuple[list[tuple[str, int]], dict[int, str]]:
        variants = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        self._check_classes(dict(enumerate(variants)), list(read_name_list(f'{self.key}/classnames.txt')))
        label_of = {v: j for j, v in enumerate(variants)}
        self.split_path = path.parent / f'images_variant_{self.split}.txt'
        if not self.split_path.is_file():
            raise FileNotFoundError(f'{self.name}: {self.split_path} is missing next to {path}; '
                                    f'{self._split_help(path.parent)}')
        rows = [line.strip().partition(' ') for line in self.split_path.read_text().splitlines() if line.strip()]
        unknown = [f'{image} {variant}' for image, _, variant in rows if variant not in label_of]
        if unknown:
            raise ValueError(f'{self.name}: {len(unknown)} lines of {self.split_path} name variants that are not in '
                             f'{path} (first: {unknown[:LISTED]}); use {self._source_help()}')
        return [(f'{image}.jpg', label_of[variant]) for image, _, variant in rows], dict(enumerate(variants))
