# ImageNetV2 matched-frequency (1000 classes). Root: $PROMPTSYNC_DATA (default ./data); see docs/datasets.md.
data = dict(
    dataset=dict(type='ImageNetV2', root='{{$PROMPTSYNC_DATA:data}}'),
    batch_size=1, num_workers=4, max_samples=None, shard=None)
