# TPT on the fine-grained / cross-dataset targets: AugMix on top of the random crops.
_base_ = ['./tpt.py']
tta = dict(views=dict(augmix=True))
