# VPT's few-shot recipe in MaPLe's repo (configs/trainers/VPT/vit_b16_c2_ep5_batch4_4.yaml, used by its
# scripts/vpt/{base2new,xd}_train_vpt.sh): 16 shots per class, batch 4, SGD lr 0.0025 (Dassl's defaults: momentum
# 0.9, weight decay 5e-4), 5 epochs, cosine after 1 constant warm-up epoch at lr 1e-5, random resized crop + flip; the
# last epoch is kept. Combine with a VPT model base (_base_/models/vpt_vit_b16.py) and give train_data.dataset.
_base_ = ['./maple_fewshot.py']  # MaPLe's schedule (16 shots, batch 4, 5 epochs, warm-up, last epoch) at lr 0.0025
trainer = dict(optimizer=dict(lr=0.0025))
