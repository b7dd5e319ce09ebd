# TPT+CoCoOp on the shapes benchmark: TPT's loop over the per-image CoCoOp context (configs/_base_/tta/tpt_cocoop.py)
# from the shipped CoCoOp prompts of the tiny CLIP (configs/shapes/cocoop_fewshot.py), with shapes TPT's view choice
# (32 px images: crops of 30-100% area, configs/shapes/tpt.py).
_base_ = ['../_base_/default_runtime.py', '../_base_/models/ps_shapes_cocoop.py', '../_base_/datasets/shapes.py',
          '../_base_/tta/tpt_cocoop.py']
model = dict(
    prompt_checkpoint='{{ fileDirname }}/../../promptsync/benchmarks/shapes/assets/cocoop_16shot_photo.safetensors')
tta = dict(views=dict(crop_scale=(0.3, 1.0)), optimizer=dict(lr=5e-3))
