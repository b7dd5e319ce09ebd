# TPT's prompt on the tiny CLIP: 4 context tokens from "a photo of a".
_base_ = ['./ps_shapes_clip.py']
model = dict(
    prompt_learner=dict(_delete_=True, type='CoOp', n_ctx=4, ctx_init='a photo of a', class_token_position='end'))
