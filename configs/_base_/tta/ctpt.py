# C-TPT (Yoon et al., ICLR 2024) as in hee-suk-yoon/C-TPT: TPT's recipe (64 views, 10% selection, AdamW lr 5e-3,
# one step, reset after every image) with the loss H(p_bar) - lambda * ATFD, the average distance of the normalised
# class text features to their centroid. lambda = 50: scripts/test_tpt_ctpt_fg.sh (the cross-dataset targets);
# the ImageNet-variant script uses 20 (configs/ctpt/vit_b16_imagenet_r.py).
_base_ = ['./tpt.py']
tta = dict(losses=[dict(type='MarginalEntropyLoss', weight=1.0),
                   dict(type='TextFeatureDispersionLoss', weight=50.0)])
