# PromptSync (Khandelwal, CVPRW 2024), as reconstructed in docs/method.md: MaPLe+TPT plus class-aware prototype
# alignment weighted by the mean class probabilities of the confident views and the test image, plus prototype
# discrimination (InfoNCE), both prompt branches updated jointly.
_base_ = ['./maple_tpt.py']
tta = dict(losses=[
    dict(type='MarginalEntropyLoss', weight=1.0),
    dict(type='ClassAwarePrototypeAlignmentLoss', weight=100.0 / 3, layers=(0, 1), mean_weight=0.5, var_weight=0.5,
         include_original=True, detach_weights=True, top_k=None, label_space='auto'),
    dict(type='PrototypeDiscriminationLoss', weight=1.0, mode='prototype_to_text', temperature=0.01,
         text_classes='auto', reuse='auto', label_space='auto'),
])
