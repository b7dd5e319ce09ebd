# Food-101 (101 classes, CoOp split, 30,300 test images). Root: $PROMPTSYNC_DATA (default ./data).
# Layouts: docs/datasets.md. Options: split='train'|'val'|'test', subsample='all'|'base'|'new', num_shots=K.
data = dict(
    dataset=dict(type='Food101', split='test', root='{{$PROMPTSYNC_DATA:data}}'),
    batch_size=1, num_workers=4, max_samples=None, shard=None)
