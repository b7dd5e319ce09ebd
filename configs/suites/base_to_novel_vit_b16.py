# Base-to-novel generalisation, CLIP ViT-B/16 (MaPLe Table 1 layout): each dataset's base and novel test classes
# (base = the first half of the sorted labels), base / novel / HM per dataset and on average, with the published
# numbers. Evaluation side: zero-shot CLIP (CoOp templates) and TPT; prompt learners trained on the base classes
# come with the training issue (model.prompt_checkpoint per dataset via `methods` overrides).
#   python tools/benchmark.py configs/suites/base_to_novel_vit_b16.py
_targets = dict(imagenet='ImageNet', caltech101='Caltech101', oxford_pets='OxfordPets', stanford_cars='StanfordCars',
                flowers102='Flowers102', food101='Food101', fgvc_aircraft='FGVCAircraft', sun397='SUN397',
                dtd='DTD', eurosat='EuroSAT', ucf101='UCF101')
_split = dict(imagenet='val')
suite = dict(
    name='base-to-novel-vit-b16',
    layout='base_to_novel',
    methods=dict(
        zeroshot=dict(config='configs/zeroshot/vit_b16_cross_dataset.py', seeds=[0]),
        tpt=dict(config='configs/tpt/vit_b16_cross_dataset.py')),
    datasets={f'{key}/{part}': dict(
        overrides={'data.dataset': dict(type=kind, split=_split.get(key, 'test'), subsample=part,
                                        root='{{$PROMPTSYNC_DATA:data}}')},
        methods=dict(zeroshot={'model.prompt_learner.templates': 'single' if key == 'imagenet' else key}))
        for key, kind in _targets.items() for part in ('base', 'new')},
    seeds=[0],
    metric='top1',
    reference=dict(table='base_to_novel_vit_b16'))
