# TPT+CoCoOp (Shu et al., NeurIPS 2022, Table 1) as azshue/TPT runs it (tpt_classification.py --tpt --cocoop at
# 63ecbac): per test image the meta-net conditions the context once on the original view's image feature
# (clip/cocoop.py gen_ctx: the encoder's output, *not* normalised, although CoCoOp trains the meta-net on normalised
# features), the conditioned context [n_ctx, D] is the learnable tensor, tuned with TPT's recipe (64 views, the 10%
# lowest-entropy ones, marginal entropy, AdamW lr 5e-3 created anew per image, one step); the image features of the
# views are computed once; the prediction is the original view with the tuned context. Use with a CoCoOp model
# whose prompts were trained (model.prompt_checkpoint=...). condition_features='normalized' conditions as CoCoOp does.
_base_ = ['./tpt.py']
tta = dict(type='ConditionedEpisodicTTA', condition_view=0, condition_features='unnormalized')
