# Domain generalisation, CLIP ViT-B/16, source ImageNet (PromptAlign Table 1): ImageNet val and its four
# variants, the OOD average, and the published numbers beside ours.
#   python tools/compute_prototypes.py configs/promptsync/vit_b16_imagenet_r.py   # once (or let `prepare` do it)
#   python tools/benchmark.py configs/suites/dg_vit_b16.py --methods zeroshot,tpt,promptalign,promptsync
suite = dict(
    name='dg-vit-b16',
    methods=dict(
        zeroshot=dict(config='configs/zeroshot/vit_b16_imagenet_r.py', seeds=[0]),
        zeroshot_ensemble=dict(config='configs/zeroshot/vit_b16_imagenet_r_ensemble.py', seeds=[0]),
        tpt=dict(config='configs/tpt/vit_b16_imagenet_r.py'),
        maple_tpt=dict(config='configs/maple_tpt/vit_b16_imagenet_r.py'),
        promptalign=dict(config='configs/promptalign/vit_b16_imagenet_r.py'),
        promptsync=dict(config='configs/promptsync/vit_b16_imagenet_r.py')),
    datasets=dict(
        imagenet={'data.dataset': dict(type='ImageNet', split='val', root='{{$PROMPTSYNC_DATA:data}}')},
        imagenet_v2={'data.dataset': dict(type='ImageNetV2', root='{{$PROMPTSYNC_DATA:data}}')},
        imagenet_sketch={'data.dataset': dict(type='ImageNetSketch', root='{{$PROMPTSYNC_DATA:data}}')},
        imagenet_a={'data.dataset': dict(type='ImageNetA', root='{{$PROMPTSYNC_DATA:data}}')},
        imagenet_r={'data.dataset': dict(type='ImageNetR', root='{{$PROMPTSYNC_DATA:data}}')}),
    averages=dict(ood_avg=['imagenet_v2', 'imagenet_sketch', 'imagenet_a', 'imagenet_r']),
    seeds=[0],
    metric='top1',
    reference=dict(table='dg_vit_b16'),
    prepare=[dict(step='prototypes', method='promptsync')])
