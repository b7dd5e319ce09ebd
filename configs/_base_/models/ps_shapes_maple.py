# MaPLe prompts on the tiny CLIP (2 tokens, depth 3), starting from the shipped few-shot prompts: 16 shots per
# class of the source domain's train split (configs/shapes/maple_fewshot.py; docs/results.md says why).
_base_ = ['./ps_shapes_maple_init.py']
model = dict(
    prompt_checkpoint='{{ fileDirname }}/../../../promptsync/benchmarks/shapes/assets/maple_16shot_photo.safetensors')
