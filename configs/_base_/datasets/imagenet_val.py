# ImageNet (ILSVRC2012) validation set, 1000 classes in <wnid>/ folders. Root: $PROMPTSYNC_DATA (default ./data);
# see docs/datasets.md for the layout.
data = dict(
    dataset=dict(type='ImageNet', split='val', root='{{$PROMPTSYNC_DATA:data}}'),
    batch_size=1, num_workers=4, max_samples=None, shard=None)
