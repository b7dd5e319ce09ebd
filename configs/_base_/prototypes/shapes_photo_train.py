# Proxy source set of the shapes benchmark: the source domain's train split (the ImageNet-train analogue).
proxy_data = dict(
    dataset=dict(type='SyntheticShapes', root='{{$PROMPTSYNC_DATA:data}}/synthetic_shapes', domain='photo',
                 split='train', per_class=200, image_size=32, seed=0),
    batch_size=100, num_workers=0)
prototypes = dict(
    file='{{$PROMPTSYNC_CKPT:checkpoints}}/shapes/prototypes_ps_shapes_vit_maple_photo_train.safetensors',
    layers=(0, 1), per_class=True, token_stats='per_token', dtype='float32', save_every=200, views=None)
