# SUN397 (397 classes, CoOp split, 19,850 test images). Root: $PROMPTSYNC_DATA (default ./data).
# Layouts: docs/datasets.md. Options: split='train'|'val'|'test', subsample='all'|'base'|'new', num_shots=K.
data = dict(
    dataset=dict(type='SUN397', split='test', root='{{$PROMPTSYNC_DATA:data}}'),
    batch_size=1, num_workers=4, max_samples=None, shard=None)
