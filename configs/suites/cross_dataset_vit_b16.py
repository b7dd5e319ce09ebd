# Cross-dataset transfer, CLIP ViT-B/16, source ImageNet -> 10 targets (PromptAlign Table 4), the 10-dataset
# average, and the published numbers beside ours. Zero-shot uses CoOp's template of each dataset; Zero, MTA and TPS
# use "a photo of a {}." everywhere, as their official code; TDA and DPE their per-dataset settings (below).
#   python tools/benchmark.py configs/suites/cross_dataset_vit_b16.py --methods zeroshot,tpt,promptalign,promptsync
_targets = dict(caltech101='Caltech101', oxford_pets='OxfordPets', stanford_cars='StanfordCars',
                flowers102='Flowers102', food101='Food101', fgvc_aircraft='FGVCAircraft', sun397='SUN397',
                dtd='DTD', eurosat='EuroSAT', ucf101='UCF101')
# TDA's per-dataset settings (official configs/<set>.yaml, datasets/<set>.py; docs/baselines.md): positive-cache
# alpha / beta and templates (CoOp's per-dataset template, CLIP's 7 ImageNet templates on Caltech, Cars and SUN397)
_TDA_ALPHA_BETA = dict(caltech101=(5.0, 5.0), oxford_pets=(2.0, 7.0), stanford_cars=(1.0, 7.0), flowers102=(1.0, 5.0),
                       food101=(1.0, 1.0), fgvc_aircraft=(2.0, 2.0), sun397=(2.0, 3.0), dtd=(2.0, 3.0),
                       eurosat=(4.0, 8.0), ucf101=(3.0, 8.0))
_TDA = {key: {'tta.positive.alpha': a, 'tta.positive.beta': b,
              'model.prompt_learner.templates': 'imagenet7' if key in ('caltech101', 'stanford_cars', 'sun397') else key}
        for key, (a, b) in _TDA_ALPHA_BETA.items()}
# DPE's (official configs/<set>.yaml, datasets/<set>.py): alpha, beta, learning rate, alignment weight, templates
_DPE_VALUES = dict(caltech101=(15.0, 5.0, 6e-4, 0.2, 'imagenet7'), oxford_pets=(4.0, 7.0, 5e-5, 0.2, 'oxford_pets'),
                   stanford_cars=(3.0, 7.0, 1e-4, 1.5, ['a photo of a {}.',
                                                        'A {} featuring a wide range of color options for easy selection.']),
                   flowers102=(2.5, 5.0, 1e-4, 0.2, 'flowers102'), food101=(3.0, 1.0, 2e-4, 0.2, 'food101'),
                   fgvc_aircraft=(6.0, 2.0, 6e-4, 0.2, 'fgvc_aircraft'), sun397=(6.0, 3.0, 2e-4, 0.2, 'imagenet7'),
                   dtd=(6.0, 3.0, 6e-4, 0.2, 'dtd'), eurosat=(3.0, 8.0, 5e-5, 0.2, 'eurosat'),
                   ucf101=(9.0, 8.0, 4e-4, 0.2, 'ucf101'))
_DPE = {key: {'tta.alpha': a, 'tta.beta': b, 'tta.text_lr': lr, 'tta.image_lr': lr, 'tta.align_weight': align,
              'model.prompt_learner.templates': templates}
        for key, (a, b, lr, align, templates) in _DPE_VALUES.items()}
suite = dict(
    name='cross-dataset-vit-b16',
    methods=dict(
        zeroshot=dict(config='configs/zeroshot/vit_b16_cross_dataset.py', seeds=[0]),
        tpt=dict(config='configs/tpt/vit_b16_cross_dataset.py'),
        maple_tpt=dict(config='configs/maple_tpt/vit_b16_cross_dataset.py'),
        promptalign=dict(config='configs/promptalign/vit_b16_cross_dataset.py'),
        promptsync=dict(config='configs/promptsync/vit_b16_cross_dataset.py'),
        ctpt=dict(config='configs/ctpt/vit_b16_cross_dataset.py'),
        zero=dict(config='configs/zero/vit_b16_cross_dataset.py'),
        mta=dict(config='configs/mta/vit_b16_cross_dataset.py'),
        tps=dict(config='configs/tps/vit_b16_cross_dataset.py'),
        tda=dict(config='configs/tda/vit_b16_cross_dataset.py'),
        dpe=dict(config='configs/dpe/vit_b16_cross_dataset.py')),
    datasets={key: dict(overrides={'data.dataset': dict(type=kind, split='test', root='{{$PROMPTSYNC_DATA:data}}')},
                        methods=dict(zeroshot={'model.prompt_learner.templates': key}, tda=_TDA[key],
                                     dpe=_DPE[key]))
              for key, kind in _targets.items()},
    averages=dict(avg=list(_targets)),
    seeds=[0],
    metric='top1',
    reference=dict(table='cross_dataset_vit_b16'),
    prepare=[dict(step='prototypes', method='promptsync')])
