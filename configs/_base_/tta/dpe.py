# DPE (Zhang et al., NeurIPS 2024) as zhangce01/DPE-CLIP (main_dpe.py, configs/imagenet.yaml): the original image
# plus 63 AugMix views (random resized crop + flip + AugMix, as its ImageNet loaders), the 10% lowest-entropy
# views, a visual queue of 3 features per class, one AdamW step (eps 1e-3, weight decay 0.1) on the text and
# visual residuals, prediction on the original view. Online: the prototypes evolve along the stream.
tta = dict(
    type='DPE',
    views=dict(type='TPTViews', n_views=64, crop_scale=(0.08, 1.0), augmix=True),
    selection=dict(type='ConfidenceSelection', ratio=0.1),
    alpha=6.0, beta=5.0, queue_capacity=3,          # yaml positive.alpha / beta / shot_capacity
    text_lr=6e-4, image_lr=6e-4, align_weight=0.5,  # yaml learning_rate.text / image / align
    align_temperature=0.01, text_update_threshold=0.1, steps=1,  # hard-coded in main_dpe.py
    optimizer=dict(type='AdamW', eps=1e-3, weight_decay=0.1),
    predict_views='original')                       # 'selected' for ImageNet-A (main_dpe.py: dataset_name == 'A')
