# TPT+CoCoOp with CLIP ViT-B/16 on ImageNet-R (TPT Table 1), from CoCoOp prompts trained on ImageNet (16 shots,
# configs/_base_/train/cocoop_fewshot.py): give them with --cfg-options model.prompt_checkpoint=<file>.
_base_ = ['../_base_/default_runtime.py', '../_base_/models/cocoop_vit_b16.py',
          '../_base_/datasets/imagenet_r.py', '../_base_/tta/tpt_cocoop.py']
