# CoOp's few-shot prompt-learning recipe (Zhou et al., IJCV 2022; its configs/trainers/CoOp/vit_b16_ep50.yaml):
# batch 32, SGD lr 0.002, momentum 0.9, weight decay 5e-4 (Dassl's defaults), 50 epochs, cosine after 1 constant
# warm-up epoch at lr 1e-5, random resized crop + flip. CoOp's scripts pass the shots (16) and the context
# (N_CTX, CTX_INIT, CSC, CLASS_TOKEN_POSITION) on the command line; the model base gives the context here.
# Combine with a CoOp model base and give train_data.dataset (and val_data) in the method config.
train_data = dict(num_shots=16, batch_size=32, num_workers=4, short_classes='error')
trainer = dict(
    type='PromptTrainer',
    epochs=50,
    optimizer=dict(type='SGD', lr=0.002, momentum=0.9, weight_decay=5e-4),
    warmup_epochs=1,
    warmup_lr=1e-5,
    min_lr=0.0,
    train_view=dict(type='TrainView', crop_scale=(0.08, 1.0), flip=True),
    final_model='last',  # Dassl's TEST.FINAL_MODEL='last_step'
    log_interval=5)
