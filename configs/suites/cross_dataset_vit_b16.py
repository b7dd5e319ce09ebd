# Cross-dataset transfer, CLIP ViT-B/16, source ImageNet -> 10 targets (PromptAlign Table 4), the 10-dataset
# average, and the published numbers beside ours. Zero-shot uses CoOp's template of each dataset.
#   python tools/benchmark.py configs/suites/cross_dataset_vit_b16.py --methods zeroshot,tpt,promptalign,promptsync
_targets = dict(caltech101='Caltech101', oxford_pets='OxfordPets', stanford_cars='StanfordCars',
                flowers102='Flowers102', food101='Food101', fgvc_aircraft='FGVCAircraft', sun397='SUN397',
                dtd='DTD', eurosat='EuroSAT', ucf101='UCF101')
suite = dict(
    name='cross-dataset-vit-b16',
    methods=dict(
        zeroshot=dict(config='configs/zeroshot/vit_b16_cross_dataset.py', seeds=[0]),
        tpt=dict(config='configs/tpt/vit_b16_cross_dataset.py'),
        maple_tpt=dict(config='configs/maple_tpt/vit_b16_cross_dataset.py'),
        promptalign=dict(config='configs/promptalign/vit_b16_cross_dataset.py'),
        promptsync=dict(config='configs/promptsync/vit_b16_cross_dataset.py')),
    datasets={key: dict(overrides={'data.dataset': dict(type=kind, split='test', root='{{$PROMPTSYNC_DATA:data}}')},
                        methods=dict(zeroshot={'model.prompt_learner.templates': key}))
              for key, kind in _targets.items()},
    averages=dict(avg=list(_targets)),
    seeds=[0],
    metric='top1',
    reference=dict(table='cross_dataset_vit_b16'),
    prepare=[dict(step='prototypes', method='promptsync')])
