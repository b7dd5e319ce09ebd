# MaPLe multimodal prompts: 2 tokens from "a photo", depth 3 (the DG / cross-dataset setting).
_base_ = ['./clip_vit_b16.py']
model = dict(
    prompt_learner=dict(_delete_=True, type='MaPLe', n_ctx=2, ctx_init='a photo of a', depth=3))
