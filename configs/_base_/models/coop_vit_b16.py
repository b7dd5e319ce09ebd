# TPT's prompt: CoOp context of 4 tokens initialised from "a photo of a", class token at the end.
_base_ = ['./clip_vit_b16.py']
model = dict(
    prompt_learner=dict(_delete_=True, type='CoOp', n_ctx=4, ctx_init='a photo of a', class_token_position='end'))
