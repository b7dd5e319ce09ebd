# ImageNet (ILSVRC2012) training set as the proxy source set (e.g. for offline class prototypes). It sits under
# `proxy_data`, next to the test `data` of another base. Root: $PROMPTSYNC_DATA (default ./data).
proxy_data = dict(
    dataset=dict(type='ImageNet', split='train', root='{{$PROMPTSYNC_DATA:data}}'),
    batch_size=64, num_workers=8)
