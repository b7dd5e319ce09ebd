# DPE with CLIP ViT-B/16 on ImageNet-R with the official configs/imagenet_r.yaml values:
# alpha 3, beta 8, lr 6e-4 (text and visual), alignment weight 0 (the yaml switches the InfoNCE term off), and the
# 80 CLIP ImageNet templates that DPE's ImageNet-R loader uses for the text prototypes (the official text prototypes
# also average the CuPL GPT-3 descriptions of each class, which this toolbox has no prompt learner for: see
# docs/baselines.md). The official loader shuffles the stream (torch seed 1).
_base_ = ['../_base_/default_runtime.py', '../_base_/models/clip_vit_b16.py',
          '../_base_/datasets/imagenet_r.py', '../_base_/tta/dpe.py']
model = dict(prompt_learner=dict(templates='imagenet80'))
tta = dict(alpha=3.0, beta=8.0, text_lr=6e-4, image_lr=6e-4, align_weight=0.0)
# Online: the official loaders shuffle the test set (shuffle=True after torch.manual_seed(1)); here a seeded shuffle
# (not the official permutation). data.batch_size changes no prediction (samples go one after another, tested); 8
# images per batch only make the saved online state (written after every batch) 8x rarer.
data = dict(stream=dict(order='shuffled', seed=0), batch_size=8)
