# Any folder with one sub-folder per class (labels = sorted folder order).
data = dict(
    dataset=dict(type='ImageFolder', root='{{$PROMPTSYNC_DATA:data}}/my_dataset', classnames=None),
    batch_size=1, num_workers=4, max_samples=None, shard=None)
