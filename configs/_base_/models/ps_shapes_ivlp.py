# IVLP prompts on the tiny CLIP, text-initialised: 2 text tokens from "a photo" + 2 vision tokens, at every layer the
# tiny model has (3 text, 4 vision; the ViT-B/16 recipe prompts all 12 of each): the start of
# configs/shapes/ivlp_fewshot.py.
_base_ = ['./ps_shapes_clip.py']
model = dict(
    prompt_learner=dict(_delete_=True, type='IVLP', n_ctx_text=2, n_ctx_vision=2, ctx_init='a photo of a',
                        depth_text=3, depth_vision=4))
