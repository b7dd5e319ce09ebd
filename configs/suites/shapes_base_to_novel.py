# Base-to-novel generalisation on the shapes benchmark (CoCoOp's protocol, MaPLe Table 1 layout): prompts are
# trained 16-shot on the 10 base classes of the source domain (photo; base = the first 10 of classes.txt), then
# evaluated on the base and the 10 novel classes of the photo test split (50 images per class); HM = harmonic mean.
# The suite trains first (one training per learner and seed, reused when done) and computes PromptAlign's /
# PromptSync's prototypes with the trained MaPLe prompts on the base classes' train images (the novel classes have
# no proxy images: they use the class-agnostic statistics). Seeds 1-3 as in the original scripts.
#   python tools/benchmark.py configs/suites/shapes_base_to_novel.py
_base_proxy = {'proxy_data.dataset.subsample': 'base'}
suite = dict(
    name='shapes-base-to-novel',
    layout='base_to_novel',
    train=dict(
        learners=dict(coop='configs/shapes/coop_fewshot.py', cocoop='configs/shapes/cocoop_fewshot.py',
                      maple='configs/shapes/b2n/maple_train.py'),
        datasets=dict(photo={'train_data.dataset.domain': 'photo', 'train_data.dataset.subsample': 'base',
                             'val_data.dataset.domain': 'photo', 'val_data.dataset.subsample': 'base'})),
    methods=dict(
        zeroshot=dict(config='configs/shapes/zeroshot.py', seeds=[1]),
        coop=dict(config='configs/shapes/b2n/coop.py', prompts='coop'),
        cocoop=dict(config='configs/shapes/b2n/cocoop.py', prompts='cocoop'),
        tpt_cocoop=dict(config='configs/shapes/tpt_cocoop.py', prompts='cocoop'),
        # TPT+CoCoOp conditioned as CoCoOp trains (normalised image features) instead of TPT's code (unnormalised)
        tpt_cocoop_norm=dict(config='configs/shapes/tpt_cocoop.py', prompts='cocoop',
                             cfg_options={'tta.condition_features': 'normalized'}),
        maple=dict(config='configs/shapes/b2n/maple.py', prompts='maple'),
        maple_tpt=dict(config='configs/shapes/maple_tpt.py', prompts='maple'),
        promptalign=dict(config='configs/shapes/promptalign.py', prompts='maple', prototypes=True,
                         cfg_options=_base_proxy),
        promptsync=dict(config='configs/shapes/promptsync.py', prompts='maple', prototypes=True,
                        cfg_options=_base_proxy)),
    datasets={f'photo/{part}': {'data.dataset.domain': 'photo', 'data.dataset.subsample': part}
              for part in ('base', 'new')},
    seeds=[1, 2, 3],
    metric='top1',
    tables=['ece'])  # (balanced accuracy = top-1 here: 50 test images in every class)
