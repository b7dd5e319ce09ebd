# TPS on a cross-dataset target: AugMix views (TPS: augmix=len(set_id) > 1) and vanilla prototypes from
# "a photo of a {}." for every dataset, as TPS's utils/save_class_embeds.py (not CoOp's per-dataset templates of
# configs/zeroshot/vit_b16_cross_dataset.py). Default target: Oxford Pets; a cross-dataset suite sets each target.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/clip_vit_b16.py',
          '../_base_/datasets/oxford_pets.py', '../_base_/tta/tps.py']
tta = dict(views=dict(augmix=True))
