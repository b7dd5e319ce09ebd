# IVLP's few-shot recipe in MaPLe's repo (configs/trainers/IVLP/vit_b16_c2_ep5_batch4_2+2ctx.yaml, used by its
# scripts/independent-vlp/{base2new,xd}_train_ivlp.sh): 16 shots per class, batch 4, SGD lr 0.0035 (Dassl's defaults:
# momentum 0.9, weight decay 5e-4), 5 epochs, cosine after 1 constant warm-up epoch at lr 1e-5, random resized crop
# + flip; the last epoch is kept. The same schedule as MaPLe's recipe. Combine with an IVLP model base
# (_base_/models/ivlp_vit_b16.py) and give train_data.dataset (and val_data) in the method config.
# The repo's "deep language prompting" variant (vit_b16_c2_ep5_batch4_4ctx_language_only.yaml) is IVLP with
# n_ctx_text=4, n_ctx_vision=0, depth_vision=0 and lr 0.0025:
#   --cfg-options model.prompt_learner.n_ctx_text=4 model.prompt_learner.n_ctx_vision=0
#                 model.prompt_learner.depth_vision=0 trainer.optimizer.lr=0.0025
_base_ = ['./maple_fewshot.py']  # the same values: 16 shots, batch 4, SGD lr 0.0035, 5 epochs, warm-up, last epoch
