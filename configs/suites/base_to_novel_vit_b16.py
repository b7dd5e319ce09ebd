# Base-to-novel generalisation, CLIP ViT-B/16 (CoCoOp's protocol, MaPLe Table 1 layout). Per dataset and seed the
# suite first trains CoOp, CoCoOp and MaPLe (depth 9) 16-shot on the base classes of the train split (the first
# half of the sorted labels; configs/base_to_novel/*_train.py, the original recipes), then tests on the base and the
# novel classes of the test split: the trained prompts as they are, MaPLe + TPT, PromptAlign and PromptSync from the
# trained MaPLe prompts. PromptAlign's / PromptSync's proxy set is the dataset's base-class train split (option iv of
# docs/method.md: the novel classes have no proxy images and use the class-agnostic statistics); the banks are
# computed with each seed's MaPLe prompts. Columns: base / novel / harmonic mean per dataset, averages, and the
# published numbers. Seeds 1-3 as in the original scripts.
#   python tools/benchmark.py configs/suites/base_to_novel_vit_b16.py      # every dataset under $PROMPTSYNC_DATA
_targets = dict(imagenet='ImageNet', caltech101='Caltech101', oxford_pets='OxfordPets', stanford_cars='StanfordCars',
                flowers102='Flowers102', food101='Food101', fgvc_aircraft='FGVCAircraft', sun397='SUN397',
                dtd='DTD', eurosat='EuroSAT', ucf101='UCF101')
_test_split = dict(imagenet='val')
_root = '{{$PROMPTSYNC_DATA:data}}'
_depth9 = {'model.prompt_learner.depth': 9}
_base_train = {key: dict(type=kind, split='train', subsample='base', root=_root) for key, kind in _targets.items()}

suite = dict(
    name='base-to-novel-vit-b16',
    layout='base_to_novel',
    train=dict(
        learners=dict(coop='configs/base_to_novel/coop_vit_b16_train.py',
                      cocoop='configs/base_to_novel/cocoop_vit_b16_train.py',
                      maple='configs/base_to_novel/maple_vit_b16_train.py'),
        datasets={key: {'train_data.dataset': _base_train[key]} for key in _targets}),
    methods=dict(
        zeroshot=dict(config='configs/zeroshot/vit_b16_cross_dataset.py', seeds=[1]),
        tpt=dict(config='configs/tpt/vit_b16_cross_dataset.py'),
        coop=dict(config='configs/base_to_novel/coop_vit_b16.py', prompts='coop'),
        cocoop=dict(config='configs/base_to_novel/cocoop_vit_b16.py', prompts='cocoop'),
        maple=dict(config='configs/base_to_novel/maple_vit_b16.py', prompts='maple'),
        maple_tpt=dict(config='configs/maple_tpt/vit_b16_cross_dataset.py', prompts='maple', cfg_options=_depth9),
        promptalign=dict(config='configs/promptalign/vit_b16_cross_dataset.py', prompts='maple', prototypes=True,
                         cfg_options=_depth9),
        promptsync=dict(config='configs/promptsync/vit_b16_cross_dataset.py', prompts='maple', prototypes=True,
                        cfg_options=_depth9)),
    datasets={f'{key}/{part}': dict(
        overrides={'data.dataset': dict(type=kind, split=_test_split.get(key, 'test'), subsample=part, root=_root)},
        methods=dict(zeroshot={'model.prompt_learner.templates': 'single' if key == 'imagenet' else key},
                     promptalign={'proxy_data.dataset': _base_train[key]},
                     promptsync={'proxy_data.dataset': _base_train[key]}))
        for key, kind in _targets.items() for part in ('base', 'new')},
    seeds=[1, 2, 3],
    metric='top1',
    tables=['ece'],
    reference=dict(table='base_to_novel_vit_b16'))
