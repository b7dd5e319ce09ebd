"""Mapping prototypes onto another label space: ids, names (ambiguity), fallbacks, text similarity."""
import pytest
import torch

from promptsync.datasets.base import LabelSpace
from promptsync.prototypes import map_prototypes

from ..losses.helpers import make_bank

PROXY = ['tench', 'missile', 'dog', 'missile', 'golden retriever']
PROXY_IDS = ['n0', 'n1', 'n2', 'n3', 'n4']


def test_by_id_gathers_matched_rows_and_a_global_row(tmp_path):
    bank = make_bank(tmp_path / 'b.safetensors', PROXY, PROXY_IDS)
    target = LabelSpace(('golden retriever', 'tench', 'zebra'), ('n4', 'n0', 'n9'))
    out = map_prototypes(bank, target, (0, 1))
    assert out.mode == 'by_id' and out.matched.tolist() == [True, True, False]
    assert torch.equal(out.mean[0][out.row_of_class[0]], bank.mean[0][4])
    assert torch.equal(out.mean[1][out.row_of_class[1]], bank.mean[1][0])
    g_mean, g_var = bank.global_stats((0,))
    assert torch.allclose(out.mean[0][out.row_of_class[2]], g_mean[0])
    assert torch.allclose(out.var[0][out.row_of_class[2]], g_var[0])


def test_by_name_treats_ambiguous_names_as_unmatched(tmp_path):
    bank = make_bank(tmp_path / 'b.safetensors', PROXY)
    target = LabelSpace(('Golden_Retriever', 'missile', 'dog'))
    out = map_prototypes(bank, target, (0,))
    assert out.mode == 'by_name' and out.matched.tolist() == [True, False, True]
    assert torch.equal(out.mean[0][out.row_of_class[2]], bank.mean[0][2])
    assert out.summary['unmatched_examples'] == ['missile']


def test_auto_falls_back_to_class_agnostic_and_explicit_modes(tmp_path):
    bank = make_bank(tmp_path / 'b.safetensors', PROXY, PROXY_IDS)
    out = map_prototypes(bank, LabelSpace(('car', 'tree')), (0,))
    assert out.mode == 'class_agnostic' and not out.matched.any() and out.row_of_class.tolist() == [0, 0]
    assert out.mean[0].shape[0] == 1
    forced = map_prototypes(bank, LabelSpace(('dog',), ('n2',)), (0,), mode='class_agnostic')
    assert not forced.matched.any()
    with pytest.raises(ValueError, match='class ids on both'):
        map_prototypes(bank, LabelSpace(('dog',)), (0,), mode='by_id')
    with pytest.raises(ValueError, match='not one of'):
        map_prototypes(bank, LabelSpace(('dog',)), (0,), mode='nearest')


def test_text_similarity_mixture_by_hand(tmp_path):
    bank = make_bank(tmp_path / 'b.safetensors', ['a', 'b', 'c'], counts=[2, 0, 5])
    feats = {('x', 'y'): torch.tensor([[1.0, 0.0], [0.6, 0.8]]),
             ('a', 'b', 'c'): torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])}
    out = map_prototypes(bank, LabelSpace(('x', 'y')), (0,), mode='text_similarity',
                         text_features=lambda names: feats[tuple(names)], top_m=2, temperature=0.1)
    # class 'b' has no images: only 'a' and 'c' may be mixed
    sim = feats[('x', 'y')] @ feats[('a', 'b', 'c')].t()
    for c in range(2):
        s = torch.tensor([sim[c, 0], sim[c, 2]]) / 0.1
        a = s.softmax(0)
        m = a[0] * bank.mean[0][0] + a[1] * bank.mean[0][2]
        v = a[0] * (bank.var[0][0] + bank.mean[0][0] ** 2) + a[1] * (bank.var[0][2] + bank.mean[0][2] ** 2) - m ** 2
        assert torch.allclose(out.mean[0][c], m, atol=1e-5) and torch.allclose(out.var[0][c], v, atol=1e-5)
    assert out.matched.all()
