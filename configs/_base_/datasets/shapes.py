# The embedded synthetic shapes benchmark (rendered on first use into $PROMPTSYNC_DATA/synthetic_shapes).
# Domains: photo (source), sketch, cartoon, corrupted; splits: train, val (choose hyper-parameters here), test.
data = dict(
    dataset=dict(type='SyntheticShapes', root='{{$PROMPTSYNC_DATA:data}}/synthetic_shapes', domain='sketch',
                 split='test', per_class=50, imbalance=None, order='class', image_size=32, seed=0),
    batch_size=4, num_workers=0, max_samples=None, shard=None)  # 4 images adapted at once (exact; docs/performance.md)
