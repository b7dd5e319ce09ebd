# TDA (Karmanov et al., CVPR 2024) as in kdiAAA/TDA (commit e697fb0c): training-free, online (the caches are carried
# across the stream; data.batch_size changes nothing). Defaults: configs/imagenet.yaml of the official code (the
# negative section is the same in every dataset yaml); views as the official code makes them for ImageNet-A/V/R/S
# (get_ood_preprocess: the original + 63 RandomResizedCrop + flip + AugMix views), of which the 10% lowest-entropy
# views are averaged (get_clip_logits). ImageNet itself and the cross-dataset targets use one centre-cropped view
# (the configs of those sets set tta.views=dict(type='OriginalView')).
tta = dict(
    type='TDA',
    views=dict(type='TPTViews', n_views=64, crop_scale=(0.08, 1.0), augmix=True),
    selection=dict(type='ConfidenceSelection', ratio=0.1),
    positive=dict(enabled=True, shot_capacity=3, alpha=2.0, beta=5.0),
    negative=dict(enabled=True, shot_capacity=2, alpha=0.117, beta=1.0, entropy_threshold=(0.2, 0.5),
                  mask_threshold=(0.03, 1.0)))
