# ImageNet-A (200 classes). Root: $PROMPTSYNC_DATA (default ./data); see docs/datasets.md for the layout.
data = dict(
    dataset=dict(type='ImageNetA', root='{{$PROMPTSYNC_DATA:data}}'),
    batch_size=1, num_workers=4, max_samples=None, shard=None)
