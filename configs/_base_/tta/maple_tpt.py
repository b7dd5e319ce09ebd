# TPT over MaPLe's multimodal prompts, with PromptAlign's settings: 63 random-resized-crop + flip views plus the
# original (no AugMix, for every dataset), the 10% lowest-entropy views, AdamW lr 4e-2, one step on every prompt
# tensor (text context, deep text prompts and the text->vision couplings), reset after every image.
tta = dict(
    type='EpisodicTTA',
    views=dict(type='TPTViews', n_views=64, crop_scale=(0.08, 1.0), augmix=False),
    selection=dict(type='ConfidenceSelection', ratio=0.1),
    losses=[dict(type='MarginalEntropyLoss', weight=1.0)],
    optimizer=dict(type='AdamW', lr=4e-2, weight_decay=0.01),
    steps=1,
    update='joint',
    reselect_each_step=False,
    reset=dict(type='EpisodicReset'),
    grad_scaler=dict(init_scale=1000.0))
