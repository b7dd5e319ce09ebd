# Offline prototypes of the ImageNet train set under the ImageNet-trained MaPLe prompts (the proxy source
# statistics). Compute once: python tools/compute_prototypes.py <a promptsync or promptalign config>.
# 1000 classes x 2 layers x 199 tokens x 768 channels (mean + variance) = ~1.2 GB in float16.
_base_ = ['../datasets/imagenet_train.py']
prototypes = dict(
    file='{{$PROMPTSYNC_CKPT:checkpoints}}/prototypes/imagenet_train_maple_vit_b16_c2_d3_seed1.safetensors',
    layers=(0, 1),            # block inputs 0 and 1, as PromptAlign aligns
    per_class=True,           # PromptAlign's class-agnostic statistics are pooled from the per-class ones
    token_stats='per_token',  # per token and channel (PromptAlign); 'pooled' = over tokens too
    dtype='float16',
    save_every=200,
    views=None)               # None = the original view (resize + centre crop)
