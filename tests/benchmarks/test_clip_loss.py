"""The multi-positive CLIP loss against a naive per-row computation."""
import math

import pytest
import torch
import torch.nn.functional as F

from promptsync.benchmarks.shapes.clip_loss import multi_positive_clip_loss, unique_captions


def test_unique_captions_and_loss_by_hand():
    ids = torch.tensor([[1, 5, 2], [1, 6, 2], [1, 5, 2], [1, 7, 2]])
    uniq, inv = unique_captions(ids)
    assert uniq.shape[0] == 3 and torch.equal(uniq[inv], ids)
    g = torch.Generator().manual_seed(0)
    img = F.normalize(torch.randn(4, 8, generator=g), dim=-1)
    txt = F.normalize(torch.randn(3, 8, generator=g), dim=-1)
    scale = torch.tensor(10.0)
    loss = multi_positive_clip_loss(img, txt, inv, scale)
    logits = (scale * img @ txt.t()).tolist()
    i2t = -sum(math.log(math.exp(logits[i][inv[i]]) / sum(math.exp(v) for v in logits[i])) for i in range(4)) / 4
    t2i = 0.0
    for j in range(3):
        col = [logits[i][j] for i in range(4)]
        log_z = math.log(sum(math.exp(v) for v in col))
        pos = [i for i in range(4) if inv[i] == j]
        t2i += -sum(col[i] - log_z for i in pos) / len(pos)
    assert float(loss) == pytest.approx((i2t + t2i / 3) / 2, abs=1e-5)


def test_without_repeats_it_is_the_clip_loss():
    g = torch.Generator().manual_seed(1)
    img = F.normalize(torch.randn(5, 8, generator=g), dim=-1)
    txt = F.normalize(torch.randn(5, 8, generator=g), dim=-1)
    logits = 7.0 * img @ txt.t()
    ref = (F.cross_entropy(logits, torch.arange(5)) + F.cross_entropy(logits.t(), torch.arange(5))) / 2
    assert float(multi_positive_clip_loss(img, txt, torch.arange(5), torch.tensor(7.0))) == pytest.approx(float(ref))
