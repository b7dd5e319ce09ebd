# CoCoOp's few-shot prompt-learning recipe (Zhou et al., CVPR 2022; KaiyangZhou/CoOp
# configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml at ff61507): 16 shots per class (its scripts' SHOTS),
# batch 1, SGD lr 0.002 (Dassl's momentum 0.9 and weight decay 5e-4), 10 epochs, cosine after 1 constant warm-up
# epoch at lr 1e-5, random resized crop + flip; PREC fp16 (here the backbone's precision='amp' autocast).
# Batch 1 because every image has its own class prompts: a batch of B costs B * C text sequences (docs/training.md).
# Combine with a CoCoOp model base and give train_data.dataset (and val_data) in the method config.
train_data = dict(num_shots=16, batch_size=1, num_workers=4, short_classes='error')
trainer = dict(
    type='PromptTrainer',
    epochs=10,
    optimizer=dict(type='SGD', lr=0.002, momentum=0.9, weight_decay=5e-4),
    warmup_epochs=1,
    warmup_lr=1e-5,
    min_lr=0.0,
    train_view=dict(type='TrainView', crop_scale=(0.08, 1.0), flip=True),
    final_model='last',  # Dassl's TEST.FINAL_MODEL='last_step'
    val_batch_size=16,   # each validation image costs C text sequences
    log_interval=20)     # the yaml's TRAIN.PRINT_FREQ
