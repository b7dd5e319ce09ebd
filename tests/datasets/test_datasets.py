"""Datasets: label maps (ImageNet-R 200-class mask), ImageFolder, layouts, errors, image loading."""
import numpy as np
import pytest
from PIL import Image

from promptsync.datasets import ImageFolder, ImageNetR
from promptsync.datasets.fake import make_image_folder
from promptsync.datasets.loading import load_rgb
from promptsync.datasets.resources import imagenet_wnids_and_names, read_indices
from promptsync.registry import DATASETS

# TPT's imagenet_r_mask / imagenet_a_mask (azshue/TPT data/imagenet_variants.py), as listed in the reference notes
R_MASK = [1, 2, 4, 6, 8, 9, 11, 13, 22, 23, 26, 29, 31, 39, 47, 63, 71, 76, 79, 84, 90, 94, 96, 97, 99, 100, 105,
          107, 113, 122, 125, 130, 132, 144, 145, 147, 148, 150, 151, 155, 160, 161, 162, 163, 171, 172, 178, 187,
          195, 199, 203, 207, 208, 219, 231, 232, 234, 235, 242, 245, 247, 250, 251, 254, 259, 260, 263, 265, 267,
          269, 276, 277, 281, 288, 289, 291, 292, 293, 296, 299, 301, 308, 309, 310, 311, 314, 315, 319, 323, 327,
          330, 334, 335, 337, 338, 340, 341, 344, 347, 353, 355, 361, 362, 365, 366, 367, 368, 372, 388, 390, 393,
          397, 401, 407, 413, 414, 425, 428, 430, 435, 437, 441, 447, 448, 457, 462, 463, 469, 470, 471, 472, 476,
          483, 487, 515, 546, 555, 558, 570, 579, 583, 587, 593, 594, 596, 609, 613, 617, 621, 629, 637, 657, 658,
          701, 717, 724, 763, 768, 774, 776, 779, 780, 787, 805, 812, 815, 820, 824, 833, 847, 852, 866, 875, 883,
          889, 895, 907, 928, 931, 932, 933, 934, 936, 937, 943, 945, 947, 948, 949, 951, 953, 954, 957, 963, 965,
          967, 980, 981, 983, 988]
A_MASK = [6, 11, 13, 15, 17, 22, 23, 27, 30, 37, 39, 42, 47, 50, 57, 70, 71, 76, 79, 89, 90, 94, 96, 97, 99, 105,
          107, 108, 110, 113, 124, 125, 130, 132, 143, 144, 150, 151, 207, 234, 235, 254, 277, 283, 287, 291, 295,
          298, 301, 306, 307, 308, 309, 310, 311, 313, 314, 315, 317, 319, 323, 324, 326, 327, 330, 334, 335, 336,
          347, 361, 363, 372, 378, 386, 397, 400, 401, 402, 404, 407, 411, 416, 417, 420, 425, 428, 430, 437, 438,
          445, 456, 457, 461, 462, 470, 472, 483, 486, 488, 492, 496, 514, 516, 528, 530, 539, 542, 543, 549, 552,
          557, 561, 562, 569, 572, 573, 575, 579, 589, 606, 607, 609, 614, 626, 627, 640, 641, 642, 643, 658, 668,
          677, 682, 684, 687, 701, 704, 719, 736, 746, 749, 752, 758, 763, 765, 768, 773, 774, 776, 779, 780, 786,
          792, 797, 802, 803, 804, 813, 815, 820, 823, 831, 833, 835, 839, 845, 847, 850, 859, 862, 870, 879, 880,
          888, 890, 897, 900, 907, 913, 924, 932, 933, 934, 937, 943, 945, 947, 951, 954, 956, 957, 959, 971, 972,
          980, 981, 984, 986, 987, 988]


def test_mask_files_equal_tpt_masks():
    assert list(read_indices('imagenet/imagenet_r_indices.txt')) == R_MASK
    assert list(read_indices('imagenet/imagenet_a_indices.txt')) == A_MASK
    assert len(set(R_MASK) & set(A_MASK)) == 86


def test_imagenet_classnames_file():
    wnids, names = imagenet_wnids_and_names()
    assert len(wnids) == len(set(wnids)) == 1000 and list(wnids) == sorted(wnids)
    assert (wnids[0], names[0]) == ('n01440764', 'tench')
    assert (wnids[1], names[1]) == ('n01443537', 'goldfish')
    assert names[999] == 'toilet paper'


def r_wnids():
    wnids, _ = imagenet_wnids_and_names()
    return [wnids[i] for i in R_MASK]


@pytest.mark.parametrize('layout', ['imagenet-rendition/imagenet-r', 'imagenet-r', ''])
def test_imagenet_r_labels_follow_the_mask_not_the_folders_present(tmp_path, layout):
    wn = r_wnids()
    present = [wn[0], wn[7], wn[199]]  # most class folders missing: labels must not shift
    make_image_folder(tmp_path / layout, present, per_class=2)
    ds = DATASETS.build(dict(type='ImageNetR', root=str(tmp_path)))
    assert ds.num_classes == 200 and len(ds) == 6
    assert sorted({d.label for d in ds.samples}) == [0, 7, 199]
    _, names = imagenet_wnids_and_names()
    assert ds.classnames[0] == names[1] == 'goldfish'
    assert ds.classnames[199] == names[988]
    assert len(ds.missing_classes) == 197
    for d in ds.samples:
        assert wn[d.label] in d.path


def test_imagenet_r_rejects_foreign_folders(tmp_path):
    make_image_folder(tmp_path / 'imagenet-r', [r_wnids()[0], 'n01440764'], per_class=1)  # tench is not in R
    with pytest.raises(ValueError, match='not ImageNet-R classes'):
        ImageNetR(str(tmp_path))


def test_imagenet_r_missing_root_says_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        ImageNetR(str(tmp_path / 'nowhere'))
    msg = str(err.value)
    assert 'imagenet-rendition/imagenet-r' in msg and 'imagenet-r.tar' in msg and 'data.dataset.root' in msg


def test_image_folder_labels_and_classnames(tmp_path):
    root = make_image_folder(tmp_path / 'f', ['zebra', 'ant', 'golden_retriever'], per_class=[1, 2, 3])
    ds = ImageFolder(str(root))
    assert ds.classnames == ['ant', 'golden retriever', 'zebra']
    assert [d.label for d in ds.samples] == [0, 0, 1, 1, 1, 2]
    names = tmp_path / 'classnames.txt'
    names.write_text('ant an ant\nzebra a zebra\ngolden_retriever golden retriever dog\n')
    assert ImageFolder(str(root), classnames=str(names)).classnames == ['an ant', 'golden retriever dog', 'a zebra']
    with pytest.raises(ValueError, match='3 class folders'):
        ImageFolder(str(root), classnames=['a', 'b'])
    names.write_text('ant an ant\n')
    with pytest.raises(KeyError, match='no class name'):
        ImageFolder(str(root), classnames=str(names))
    with pytest.raises(FileNotFoundError, match='ROOT/<class folder>'):
        ImageFolder(str(tmp_path / 'missing'))


@pytest.mark.parametrize('mode', ['L', 'P', 'CMYK', 'RGBA', 'I;16', 'LA'])
def test_load_rgb_converts_modes(tmp_path, mode):
    arr = (np.arange(24 * 20).reshape(20, 24) % 256).astype(np.uint8)
    if mode == 'I;16':
        img = Image.fromarray(arr.astype(np.uint16) * 257)  # a 16-bit greyscale PNG
        path = tmp_path / 'x.png'
    else:
        img = Image.fromarray(arr).convert(mode)
        path = tmp_path / ('x.tiff' if mode == 'CMYK' else 'x.png')
    img.save(path)
    out = load_rgb(str(path))
    assert out.mode == 'RGB' and out.size == (24, 20)
    if mode in ('L', 'I;16'):
        assert np.abs(np.asarray(out)[..., 0].astype(int) - arr.astype(int)).max() <= 1


def test_load_rgb_names_the_broken_file(tmp_path):
    bad = tmp_path / 'broken.jpg'
    bad.write_bytes(b'not an image')
    with pytest.raises(OSError, match='broken.jpg'):
        load_rgb(str(bad))
