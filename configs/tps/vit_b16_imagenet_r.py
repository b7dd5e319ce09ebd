# TPS with CLIP ViT-B/16 on ImageNet-R: vanilla prototypes from "a photo of a {}." (TPS's class_embeds,
# scripts/shift/shift_text_per_class.sh), no AugMix on the ImageNet variants (TPS: augmix=len(set_id) > 1).
# TPS's template prototypes (shift_text_per_class_mean_init_template.sh): model.prompt_learner.templates='imagenet80'.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/clip_vit_b16.py',
          '../_base_/datasets/imagenet_r.py', '../_base_/tta/tps.py']
