"""Small in-memory prototype banks and contexts for the loss tests."""
import torch
import torch.nn.functional as F

from promptsync.datasets.base import LabelSpace
from promptsync.prototypes import PrototypeBank
from promptsync.tta.context import TTAContext


def make_bank(path, names, ids=None, layers=(0, 1), shape=(5, 4), counts=None, embed=32, seed=0, pooled=False):
    g = torch.Generator().manual_seed(seed)
    k = len(names)
    shape = shape[-1:] if pooled else shape
    mean = {lay: torch.randn(k, *shape, generator=g) for lay in layers}
    var = {lay: torch.rand(k, *shape, generator=g) + 0.1 for lay in layers}
    counts = torch.tensor(counts if counts is not None else [3 + i for i in range(k)])
    visual = F.normalize(torch.randn(k, embed, generator=g), dim=-1)
    bank = PrototypeBank(tuple(layers), mean, var, counts, visual, LabelSpace(tuple(names), tuple(ids) if ids else None),
                         'pooled' if pooled else 'per_token')
    bank.save(path)
    return PrototypeBank.load(path)


def make_ctx(model, n_views=6, n_classes=4, layers=(0, 1), shape=(5, 4), selected=(2, 4, 5), seed=1):
    g = torch.Generator().manual_seed(seed)
    tokens = {lay: torch.randn(n_views, *shape, generator=g).requires_grad_(True) for lay in layers}
    logits = (3 * torch.randn(n_views, n_classes, generator=g)).requires_grad_(True)
    ctx = TTAContext(index=0, label=0, views=torch.zeros(n_views, 3, 4, 4), model=model, logits=logits,
                     selected=torch.tensor(selected), vision_tokens=tokens)
    return ctx
