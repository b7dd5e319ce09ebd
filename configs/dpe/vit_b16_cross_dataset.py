# DPE with CLIP ViT-B/16 on a cross-dataset target (default: Oxford Pets, the official configs/oxford_pets.yaml:
# alpha 4, beta 7, lr 5e-5, alignment weight 0.2). DPE's fine-grained loaders use CLIP's preprocessing only: one
# centre-cropped view per image, no augmented views. Text prototypes: CoOp's template of the dataset ("a photo of
# a {}, a type of pet."; the official code adds the CuPL descriptions, see docs/baselines.md). Every target has
# its own yaml values (alpha, beta, lr, align): a suite that swaps the dataset must set them too (table in
# docs/baselines.md).
_base_ = ['../_base_/default_runtime.py', '../_base_/models/clip_vit_b16.py',
          '../_base_/datasets/oxford_pets.py', '../_base_/tta/dpe.py']
model = dict(prompt_learner=dict(templates='oxford_pets'))
tta = dict(views=dict(_delete_=True, type='OriginalView'), alpha=4.0, beta=7.0, text_lr=5e-5, image_lr=5e-5,
           align_weight=0.2)
# Online: the official loaders shuffle the test set (shuffle=True after torch.manual_seed(1)); here a seeded shuffle
# (not the official permutation). data.batch_size changes no prediction (samples go one after another, tested); 8
# images per batch only make the saved online state (written after every batch) 8x rarer.
data = dict(stream=dict(order='shuffled', seed=0), batch_size=8)
