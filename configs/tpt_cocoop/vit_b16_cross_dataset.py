# TPT+CoCoOp on a cross-dataset target: AugMix views, as TPT does for the fine-grained sets (default target: Oxford
# Pets), from CoCoOp prompts trained on ImageNet: --cfg-options model.prompt_checkpoint=<file>.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/cocoop_vit_b16.py',
          '../_base_/datasets/oxford_pets.py', '../_base_/tta/tpt_cocoop.py']
tta = dict(views=dict(augmix=True))
