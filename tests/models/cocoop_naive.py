"""Naive CoCoOp by hand (one image, one class at a time), for the CoCoOp and TPT+CoCoOp tests."""
import torch
import torch.nn.functional as F


def naive_context(learner, feature: torch.Tensor, ctx: torch.Tensor | None = None) -> torch.Tensor:
    """``ctx + linear2(relu(linear1(f)))`` for one feature ``[E]``, written out with the weights."""
    net = learner.meta_net
    hidden = torch.clamp(net.linear1.weight @ feature + net.linear1.bias, min=0)
    shift = net.linear2.weight @ hidden + net.linear2.bias                      # [D]
    base = learner.ctx if ctx is None else ctx
    return base + shift.unsqueeze(0)                                            # every token shifted alike


def naive_class_features(backbone, classnames, context: torch.Tensor) -> torch.Tensor:
    """``[C, E]``: each class prompt 'a photo of a {c}.' embedded, its first ``n`` word tokens replaced by
    ``context`` ``[n, D]``, encoded on its own."""
    n = context.shape[0]
    out = []
    for name in classnames:
        ids = backbone.tokenize([f"a photo of a {name.replace('_', ' ')}."])
        emb = backbone.embed_tokens(ids).clone()
        emb[0, 1:1 + n] = context
        out.append(backbone.encode_text(ids, emb, normalize=True)[0])
    return torch.stack(out)


def naive_logits(model, images: torch.Tensor) -> torch.Tensor:
    """CoCoOp's ``CustomCLIP.forward``, one image after another: normalised feature -> its context -> its classes."""
    bb, learner = model.backbone, model.prompt_learner
    rows = []
    for image in images:
        f = F.normalize(bb.encode_image(image[None]).float()[0], dim=-1)
        text = naive_class_features(bb, learner.classnames, naive_context(learner, f))
        rows.append(bb.logit_scale() * text @ f)
    return torch.stack(rows)
