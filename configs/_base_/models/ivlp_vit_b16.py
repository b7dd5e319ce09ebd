# IVLP (independent deep vision-language prompts, MaPLe's ablation baseline) on CLIP ViT-B/16, as MaPLe's repo's
# configs/trainers/IVLP/vit_b16_c2_ep5_batch4_2+2ctx.yaml: 2 text tokens from "a photo" + 2 vision tokens, prompts at
# all 12 layers of both encoders (PROMPT_DEPTH_TEXT = PROMPT_DEPTH_VISION = 12), N(0, 0.02) for every other prompt.
_base_ = ['./clip_vit_b16.py']
model = dict(
    prompt_learner=dict(_delete_=True, type='IVLP', n_ctx_text=2, n_ctx_vision=2, ctx_init='a photo of a',
                        depth_text=12, depth_vision=12))
