# PromptAlign (Hassan et al., NeurIPS 2023): MaPLe+TPT plus L1 alignment of the selected views' token mean and
# variance (layers 0 and 1) to the class-agnostic source statistics. Weight 100/3 = PromptAlign's code
# (DISTR_LOSS_W / (ALIGN_LAYER_TO - ALIGN_LAYER_FROM)), 0.5/0.5 for mean/variance.
_base_ = ['./maple_tpt.py']
tta = dict(losses=[
    dict(type='MarginalEntropyLoss', weight=1.0),
    dict(type='DistributionAlignmentLoss', weight=100.0 / 3, layers=(0, 1), mean_weight=0.5, var_weight=0.5),
])
