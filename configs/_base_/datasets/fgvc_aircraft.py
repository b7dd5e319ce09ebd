# FGVC-Aircraft (100 variants, official split, 3,333 test images). Root: $PROMPTSYNC_DATA (default ./data).
# Layouts: docs/datasets.md. Options: split='train'|'val'|'test', subsample='all'|'base'|'new', num_shots=K.
data = dict(
    dataset=dict(type='FGVCAircraft', split='test', root='{{$PROMPTSYNC_DATA:data}}'),
    batch_size=1, num_workers=4, max_samples=None, shard=None)
