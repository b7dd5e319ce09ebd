# MaPLe prompts on the tiny CLIP, text-initialised (2 tokens from "a photo", depth 3): the starting point of
# the few-shot training that produces the shipped prompts (configs/shapes/maple_fewshot.py).
_base_ = ['./ps_shapes_clip.py']
model = dict(prompt_learner=dict(_delete_=True, type='MaPLe', n_ctx=2, ctx_init='a photo of a', depth=3))
