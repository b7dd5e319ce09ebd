"""The synthetic shapes benchmark: determinism, caching, splits, imbalance, domains, class list."""
import numpy as np
import pytest
from PIL import Image

from promptsync.benchmarks.shapes import DOMAINS, SyntheticShapes, class_names
from promptsync.benchmarks.shapes.dataset import image_seed, long_tail_counts
from promptsync.benchmarks.shapes.geometry import SHAPES
from promptsync.benchmarks.shapes.render import PRETRAIN_STYLES, render
from promptsync.registry import DATASETS


def test_class_list_is_data_and_matches_the_geometry():
    assert len(class_names()) >= 20 and set(class_names()) == set(SHAPES)


@pytest.mark.parametrize('style', list(DOMAINS) + list(PRETRAIN_STYLES[1:]))
def test_rendering_is_deterministic_and_seed_dependent(style):
    a = np.asarray(render('star', style, seed=5).image)
    b = np.asarray(render('star', style, seed=5).image)
    c = np.asarray(render('star', style, seed=6).image)
    assert a.shape == (32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_domains_differ_from_the_source():
    """Same seed, same object: the target domains change the pixels a lot (a shift, not a copy)."""
    for dom in ('sketch', 'cartoon', 'corrupted'):
        diffs = [np.abs(np.asarray(render('house', dom, seed=s).image, np.float32)
                        - np.asarray(render('house', 'photo', seed=s).image, np.float32)).mean() for s in range(8)]
        assert np.mean(diffs) > 10, (dom, diffs)
    sketch = np.asarray(render('house', 'sketch', seed=3).image)
    assert sketch.std(axis=2).mean() < 8  # pencil on paper: (nearly) grey


def test_dataset_labels_cache_and_prefix(tmp_path):
    ds = DATASETS.build(dict(type='SyntheticShapes', root=str(tmp_path), domain='sketch', split='val', per_class=2,
                             workers=1))
    assert ds.num_classes == len(class_names()) and len(ds) == 2 * ds.num_classes
    assert ds.rendered == len(ds) and ds.label_space.ids[14] == 'lightning_bolt'
    for d in ds.samples:
        assert f"/{ds.class_ids[d.label]}/" in d.path
    again = SyntheticShapes(str(tmp_path), domain='sketch', split='val', per_class=3, workers=1)
    assert again.rendered == ds.num_classes  # only the third image of each class is new
    first = [d.path for d in again.samples if d.path.endswith('00000.png')]
    expected = render(class_names()[0], 'sketch', image_seed(0, 'sketch', 'val', 0, 0)).image
    assert np.array_equal(np.asarray(Image.open(first[0]).convert('RGB')), np.asarray(expected))


def test_splits_and_domains_use_disjoint_seeds():
    seeds = {image_seed(0, d, s, c, i) for d in DOMAINS for s in ('train', 'val', 'test') for c in range(3)
             for i in range(5)}
    assert len(seeds) == len(DOMAINS) * 3 * 3 * 5


def test_long_tail_counts_by_hand():
    counts = long_tail_counts(100, 20, 10.0, seed=0)
    assert max(counts) == 100 and min(counts) == 10
    ranks = sorted(counts, reverse=True)
    assert ranks == [round(100 * 10 ** (-r / 19)) for r in range(20)]
    with pytest.raises(ValueError, match='>= 1'):
        long_tail_counts(10, 20, 0.5, 0)


def test_imbalanced_stream_is_a_subset_of_the_balanced_one(tmp_path):
    bal = SyntheticShapes(str(tmp_path), 'cartoon', 'test', per_class=4, workers=1)
    imb = SyntheticShapes(str(tmp_path), 'cartoon', 'test', per_class=4, imbalance=dict(type='long_tail', ratio=4),
                          order='shuffled', workers=1)
    assert imb.rendered == 0 and set(d.path for d in imb.samples) <= set(d.path for d in bal.samples)
    assert sorted(imb.counts) != sorted(bal.counts) and max(imb.counts) == 4 and min(imb.counts) == 1
    assert [d.label for d in imb.samples] != sorted(d.label for d in imb.samples)  # a shuffled stream


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match='domain'):
        SyntheticShapes(str(tmp_path), domain='painting')
    with pytest.raises(ValueError, match='split'):
        SyntheticShapes(str(tmp_path), split='dev')
    with pytest.raises(ValueError, match='long_tail'):
        SyntheticShapes(str(tmp_path), imbalance=dict(type='step'))
