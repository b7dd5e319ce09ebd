# VPT-deep prompts on the tiny CLIP: 8 vision tokens at all 4 vision layers (the ViT-B/16 recipe: all 12), the fixed
# text prompt "a photo of a {}.": the start of configs/shapes/vpt_fewshot.py.
_base_ = ['./ps_shapes_clip.py']
model = dict(prompt_learner=dict(_delete_=True, type='VPT', n_ctx_vision=8, depth=4, templates='single'))
