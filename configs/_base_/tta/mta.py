# MTA (Zanella & Ben Ayed, CVPR 2024) as in MaxZanella/MTA (mta.py, main.py): the original plus 63 RandomResizedCrop +
# flip views (AugMix only for TPT there, never for MTA), one no-grad forward, then the inlierness-weighted MeanShift
# mode of the views' features (lambda_y 0.2, lambda_q 4, 5 iterations, bandwidth from the 30% nearest views).
# docs/baselines.md.
tta = dict(
    type='MTA',
    views=dict(type='TPTViews', n_views=64, crop_scale=(0.08, 1.0), augmix=False),
    lambda_y=0.2, lambda_q=4.0, max_iter=5, tol=1e-6, knn_ratio=0.3)
