# TPS (Sui et al., WACV 2025) as in elaine-sui/TPS (scripts/shift/shift_text_per_class*.sh, README lr 5e-3): the
# prototypes of the model's prompts (computed once), one shift vector per class initialised at zero and added to
# the normalised prototypes (then re-normalised), 63 random-resized-crop + flip views plus the original, the 10%
# lowest-entropy views re-selected at every step, marginal entropy, AdamW lr 5e-3 (weight decay 0.01, torch's
# default), one step, a fresh shift for every image, prediction on the original view.
tta = dict(
    type='TPS',
    views=dict(type='TPTViews', n_views=64, crop_scale=(0.08, 1.0), augmix=False),
    per_class=True,
    selection=dict(type='ConfidenceSelection', ratio=0.1),
    optimizer=dict(type='AdamW', lr=5e-3, weight_decay=0.01),
    steps=1,
    reselect_each_step=True)
