# TPT (Shu et al., NeurIPS 2022) as in azshue/TPT: 63 random-resized-crop + flip views plus the original,
# the 10% lowest-entropy views, marginal entropy, AdamW lr 5e-3, one step, reset after every image.
tta = dict(
    type='EpisodicTTA',
    views=dict(type='TPTViews', n_views=64, crop_scale=(0.08, 1.0), augmix=False),
    selection=dict(type='ConfidenceSelection', ratio=0.1),
    losses=[dict(type='MarginalEntropyLoss', weight=1.0)],
    optimizer=dict(type='AdamW', lr=5e-3, weight_decay=0.01),
    steps=1,
    reselect_each_step=False,
    reset=dict(type='EpisodicReset'),
    grad_scaler=dict(init_scale=1000.0))
