# Zero (Farina et al., NeurIPS 2024) as in FarinaMatteo/zero (ttas/zero.py, data/augs.py): the original plus 63
# RandomResizedCrop + flip views (no AugMix, on every dataset), one no-grad forward, the 30% lowest-entropy views
# (gamma = 0.3: the official code since commit 9737ffb; the paper's first version: 0.1) vote with their argmax
# (softmax temperature -> 0), ties broken greedily by the remaining views. docs/baselines.md.
tta = dict(
    type='Zero',
    views=dict(type='TPTViews', n_views=64, crop_scale=(0.08, 1.0), augmix=False),
    ratio=0.3)
