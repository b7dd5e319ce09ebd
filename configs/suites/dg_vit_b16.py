# Domain generalisation, CLIP ViT-B/16, source ImageNet (PromptAlign Table 1): ImageNet val and its four
# variants, the OOD average, and the published numbers beside ours.
#   python tools/compute_prototypes.py configs/promptsync/vit_b16_imagenet_r.py   # once (or let `prepare` do it)
#   python tools/benchmark.py configs/suites/dg_vit_b16.py --methods zeroshot,tpt,promptalign,promptsync
# C-TPT, Zero, MTA, TPS, TDA and DPE follow their official code (docs/baselines.md); TDA and DPE are online (one
# stream per cell, data.stream in their configs).
_SETS = dict(imagenet=('ImageNet', dict(split='val')), imagenet_v2=('ImageNetV2', {}),
             imagenet_sketch=('ImageNetSketch', {}), imagenet_a=('ImageNetA', {}), imagenet_r=('ImageNetR', {}))
# TDA's per-dataset settings (official configs/<set>.yaml and datasets/<set>.py; docs/baselines.md): positive-cache
# alpha / beta, templates, and one centre-cropped view on ImageNet itself (AugMix views on the variants)
_TDA = dict(
    imagenet={'tta.positive.alpha': 2.0, 'tta.positive.beta': 5.0, 'model.prompt_learner.templates': 'imagenet7',
              'tta.views': dict(type='OriginalView')},
    imagenet_a={'tta.positive.alpha': 2.0, 'tta.positive.beta': 5.0, 'model.prompt_learner.templates': 'imagenet7'},
    imagenet_v2={'tta.positive.alpha': 1.0, 'tta.positive.beta': 8.0, 'model.prompt_learner.templates': 'imagenet7'},
    imagenet_r={'tta.positive.alpha': 1.0, 'tta.positive.beta': 8.0, 'model.prompt_learner.templates': 'imagenet80'},
    imagenet_sketch={'tta.positive.alpha': 2.363, 'tta.positive.beta': 7.45,
                     'model.prompt_learner.templates': 'imagenet80'})
# DPE's (official configs/<set>.yaml, datasets/<set>.py): alpha, beta, learning rate, alignment weight, templates;
# ImageNet-A predicts on the selected views
_DPE_VALUES = dict(imagenet=(6.0, 5.0, 6e-4, 0.5, 'imagenet7'), imagenet_a=(6.0, 5.0, 3e-4, 2.5, 'imagenet7'),
                   imagenet_v2=(3.0, 8.0, 5e-4, 0.5, 'imagenet7'), imagenet_r=(3.0, 8.0, 6e-4, 0.0, 'imagenet80'),
                   imagenet_sketch=(7.0, 7.45, 6e-4, 0.2, 'imagenet80'))
_DPE = {key: {'tta.alpha': a, 'tta.beta': b, 'tta.text_lr': lr, 'tta.image_lr': lr, 'tta.align_weight': align,
              'model.prompt_learner.templates': templates,
              'tta.predict_views': 'selected' if key == 'imagenet_a' else 'original'}
        for key, (a, b, lr, align, templates) in _DPE_VALUES.items()}
suite = dict(
    name='dg-vit-b16',
    methods=dict(
        zeroshot=dict(config='configs/zeroshot/vit_b16_imagenet_r.py', seeds=[0]),
        zeroshot_ensemble=dict(config='configs/zeroshot/vit_b16_imagenet_r_ensemble.py', seeds=[0]),
        tpt=dict(config='configs/tpt/vit_b16_imagenet_r.py'),
        maple_tpt=dict(config='configs/maple_tpt/vit_b16_imagenet_r.py'),
        promptalign=dict(config='configs/promptalign/vit_b16_imagenet_r.py'),
        promptsync=dict(config='configs/promptsync/vit_b16_imagenet_r.py'),
        ctpt=dict(config='configs/ctpt/vit_b16_imagenet_r.py'),
        zero=dict(config='configs/zero/vit_b16_imagenet_r.py'),
        mta=dict(config='configs/mta/vit_b16_imagenet_r.py'),
        tps=dict(config='configs/tps/vit_b16_imagenet_r.py'),
        tda=dict(config='configs/tda/vit_b16_imagenet_r.py'),
        dpe=dict(config='configs/dpe/vit_b16_imagenet_r.py')),
    datasets={key: dict(overrides={'data.dataset': dict(type=kind, root='{{$PROMPTSYNC_DATA:data}}', **extra)},
                        methods=dict(tda=_TDA[key], dpe=_DPE[key]))
              for key, (kind, extra) in _SETS.items()},
    averages=dict(ood_avg=['imagenet_v2', 'imagenet_sketch', 'imagenet_a', 'imagenet_r']),
    seeds=[0],
    metric='top1',
    reference=dict(table='dg_vit_b16'),
    prepare=[dict(step='prototypes', method='promptsync')])
