# CoCoOp's prompt on the tiny CLIP: 4 context tokens from "a photo of a", meta-net 64 -> 4 -> 64.
_base_ = ['./ps_shapes_clip.py']
model = dict(
    prompt_learner=dict(_delete_=True, type='CoCoOp', n_ctx=4, ctx_init='a photo of a', meta_net_reduction=16))
