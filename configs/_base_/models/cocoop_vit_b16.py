# CoCoOp's prompt (Zhou et al., CVPR 2022; KaiyangZhou/CoOp configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml):
# 4 context tokens from "a photo of a", shifted per image by the meta-net (embed_dim -> embed_dim // 16 -> text width).
# Every image has its own class prompts (B images = B * C text sequences): text_chunk_size bounds the sequences
# encoded at once (and the images whose prompts are built at once: text_chunk_size // C, at least one).
_base_ = ['./clip_vit_b16.py']
model = dict(
    prompt_learner=dict(_delete_=True, type='CoCoOp', n_ctx=4, ctx_init='a photo of a', meta_net_reduction=16),
    text_chunk_size=1000)
