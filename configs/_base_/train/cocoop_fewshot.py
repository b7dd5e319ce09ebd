# CoCoOp's few-shot prompt-learning recipe (Zhou et al., CVPR 2022; KaiyangZhou/CoOp
# configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml at ff61507): 16 shots per class (its scripts' SHOTS),
# batch 1, SGD lr 0.002 (Dassl's momentum 0.9 and weight decay 5e-4), 10 epochs, cosine after 1 constant warm-up
# epoch at lr 1e-5, random resized crop + flip; PREC fp16 (here the backbone's precision='amp' autocast).
# Batch 1 because every image has its own class prompts: a batch of B costs B * C text sequences (docs/training.md).
# Combine with a CoCoOp model base and give train_data.dataset (and val_data) in the method config.
_base_ = ['./coop_fewshot.py']  # CoOp's SGD lr 0.002, warm-up + cosine, crops, last epoch; CoCoOp's batch and epochs:
train_data = dict(batch_size=1)
trainer = dict(
    epochs=10,
    val_batch_size=16,   # each validation image costs C text sequences
    log_interval=20)     # the yaml's TRAIN.PRINT_FREQ
