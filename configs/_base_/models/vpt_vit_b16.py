# VPT-deep on CLIP ViT-B/16 as MaPLe's repo runs it (configs/trainers/VPT/vit_b16_c2_ep5_batch4_4.yaml): 8 vision
# tokens at all 12 vision layers (PROMPT_DEPTH_VISION = 12), the fixed text prompt "a photo of a {}." (trainers/vpt.py).
_base_ = ['./clip_vit_b16.py']
model = dict(prompt_learner=dict(_delete_=True, type='VPT', n_ctx_vision=8, depth=12, templates='single'))
