# MaPLe's few-shot prompt-learning recipe (Khattak et al., CVPR 2023; its
# configs/trainers/MaPLe/vit_b16_c2_ep5_batch4_2ctx.yaml): 16 shots per class, batch 4, SGD lr 0.0035,
# momentum 0.9, weight decay 5e-4, 5 epochs, cosine after 1 constant warm-up epoch at lr 1e-5, random resized
# crop + flip. Combine with a MaPLe model base and give train_data.dataset (and val_data) in the method config.
# NOTE: MaPLe's cross-dataset / domain-generalisation ImageNet recipe (vit_b16_c2_ep5_batch4_2ctx_cross_datasets.yaml,
# the checkpoint PromptAlign and PromptSync start from) uses lr 0.0026 and 2 epochs:
#   --cfg-options trainer.optimizer.lr=0.0026 trainer.epochs=2
train_data = dict(num_shots=16, batch_size=4, num_workers=4, short_classes='error')
trainer = dict(
    type='PromptTrainer',
    epochs=5,
    optimizer=dict(type='SGD', lr=0.0035, momentum=0.9, weight_decay=5e-4),
    warmup_epochs=1,
    warmup_lr=1e-5,
    min_lr=0.0,
    train_view=dict(type='TrainView', crop_scale=(0.08, 1.0), flip=True),
    # MaPLe (Dassl's TEST.FINAL_MODEL='last_step') keeps the last epoch; 'best_val' keeps the best val_data epoch.
    final_model='last',
    log_interval=20)
