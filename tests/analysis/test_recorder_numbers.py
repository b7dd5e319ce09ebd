"""AdaptationRecorder's numbers against a hand computation on the tiny model: prompt change from learner snapshots,
features recomputed by a fresh model holding those snapshots, flips from two separate runs (steps=0 vs steps=1),
the across-sample variance from the stacked text features."""
import math

import pytest
import torch
import torch.nn.functional as F

from promptsync.analysis.summary import flips
from promptsync.hooks import Hook

from .helpers import N_SAMPLES, Snapshots, features_of, make_batch, make_method, recorded

TEXT = ('ctx', 'compound_prompts_text.0', 'compound_prompts_text.1')   # MaPLe depth 3, written out by hand
VISION = ('proj.weight', 'proj.bias', 'compound_prompt_projections.0.weight', 'compound_prompt_projections.0.bias',
          'compound_prompt_projections.1.weight', 'compound_prompt_projections.1.bias')


FLIPPING = dict(type='SGD', lr=20.0)  # moves 5 of the 6 predictions of the random-weight model


def approx(x):
    return pytest.approx(x, rel=2e-5, abs=1e-6)


def norm_of_change(before, after, names):
    return math.sqrt(sum(float((after[n].double() - before[n].double()).pow(2).sum()) for n in names))


@pytest.fixture(scope='module')
def maple_run(backbone):
    snaps = Snapshots()  # two steps: the initial image feature is the first forward's, not the second's
    recorder, method, results = recorded(backbone, 'maple', steps=2, extra_hooks=[snaps])
    return recorder, results, snaps


def test_prompt_change_is_the_norm_of_the_snapshot_difference(maple_run):
    recorder, _, snaps = maple_run
    assert set(snaps.before[10]) == set(TEXT + VISION)
    for rec in recorder.records:
        before, after = snaps.before[rec['index']], snaps.after[rec['index']]
        assert rec['prompt_change']['text'] == approx(norm_of_change(before, after, TEXT))
        assert rec['prompt_change']['vision'] == approx(norm_of_change(before, after, VISION))
        assert rec['prompt_change']['all'] == approx(norm_of_change(before, after, TEXT + VISION))
        assert rec['prompt_change']['text'] > 1e-3 and rec['prompt_change']['vision'] > 1e-3


def test_shifts_and_consistency_by_hand(backbone, maple_run):
    recorder, results, snaps = maple_run
    views = make_batch()['views']
    for b, rec in enumerate(recorder.records):
        i = rec['index']
        f0, T0, z0 = features_of(backbone, 'maple', snaps.before[i], views[b])
        fa, Ta, za = features_of(backbone, 'maple', snaps.after[i], views[b])
        assert torch.allclose(za, results[b].logits, atol=1e-4)  # the hand model predicts what the method did
        y = int(za.argmax())
        D, dimg = (Ta - T0).double(), (fa - f0).double()
        assert rec['pred'] == y and rec['pred_initial'] == int(z0.argmax())
        assert rec['confidence'] == approx(float(za.softmax(-1).max()))
        assert rec['confidence_initial'] == approx(float(z0.softmax(-1).max()))
        assert rec['image_shift'] == approx(float(dimg.norm()))
        assert rec['text_shift']['rms'] == approx(float(D.pow(2).sum(1).mean().sqrt()))
        assert rec['text_shift']['mean'] == approx(float(D.mean(0).norm()))
        assert rec['text_shift']['pred'] == approx(float(D[y].norm()))
        assert rec['consistency']['pred'] == approx(float(F.cosine_similarity(D[y], dimg, dim=0)))
        assert rec['consistency']['mean'] == approx(float(F.cosine_similarity(D.mean(0), dimg, dim=0)))
        spread = float(((Ta.double() - Ta.double().mean(0)) ** 2).sum(1).mean())
        assert rec['text_spread'] == approx(spread)
        assert rec['image_shift'] > 1e-3 and rec['text_shift']['rms'] > 1e-3


def test_across_sample_variance_of_the_adapted_text_features(backbone, maple_run):
    recorder, _, snaps = maple_run
    views = make_batch()['views']
    T = torch.stack([features_of(backbone, 'maple', snaps.after[10 + b], views[b])[1].double()
                     for b in range(N_SAMPLES)])                                  # [N, C, E]
    T0 = features_of(backbone, 'maple', snaps.before[10], views[0])[1].double()
    naive_var = float(T.var(dim=0, unbiased=False).sum(dim=1).mean())            # per class, summed over E
    naive_ms = float((T - T0).pow(2).sum(dim=2).mean())
    got = recorder.sums.variance()
    assert got['samples'] == N_SAMPLES and recorder.sums.indices == list(range(10, 10 + N_SAMPLES))
    assert got['variance'] == pytest.approx(naive_var, rel=1e-5)
    assert got['mean_sq_shift'] == pytest.approx(naive_ms, rel=1e-5)
    assert 0 < got['variance'] < got['mean_sq_shift']


def test_flips_counted_by_hand_from_a_zero_step_and_a_one_step_run(backbone):
    batch = make_batch()
    p0 = [r.pred for r in make_method(backbone, 'maple', steps=0).process_batch(batch)]
    p1 = [r.pred for r in make_method(backbone, 'maple', steps=1, optimizer=FLIPPING).process_batch(batch)]
    changed = [b for b in range(N_SAMPLES) if p0[b] != p1[b]]
    assert len(changed) >= 3, 'the test needs three flipped samples (raise the learning rate)'
    labels = list(p0)  # unchanged samples: right -> right
    kinds = {}
    for k, b in enumerate(changed):  # the labels do not enter the adaptation: choose them to get each kind
        kind = ('right_to_wrong', 'wrong_to_right', 'wrong_to_wrong')[k % 3]
        labels[b] = {'right_to_wrong': p0[b], 'wrong_to_right': p1[b],
                     'wrong_to_wrong': next(c for c in range(4) if c not in (p0[b], p1[b]))}[kind]
        kinds[kind] = kinds.get(kind, 0) + 1
    recorder, _, _ = recorded(backbone, 'maple', steps=1, labels=labels, optimizer=FLIPPING)
    assert [r['pred_initial'] for r in recorder.records] == p0
    assert [r['pred'] for r in recorder.records] == p1
    got = flips(recorder.records)
    assert got['changed'] == len(changed) and got['failed'] == 0
    for kind in ('right_to_wrong', 'wrong_to_right', 'wrong_to_wrong'):
        assert got[kind] == kinds.get(kind, 0)
    assert got['top1_initial'] == pytest.approx(100.0 * (N_SAMPLES - kinds.get('wrong_to_right', 0)
                                                         - kinds.get('wrong_to_wrong', 0)) / N_SAMPLES)
    assert got['top1'] - got['top1_initial'] == pytest.approx(
        100.0 * (got['wrong_to_right'] - got['right_to_wrong']) / N_SAMPLES)


def test_zero_steps_record_no_change(backbone):
    recorder, _, _ = recorded(backbone, 'maple', steps=0)
    for rec in recorder.records:
        assert rec['pred'] == rec['pred_initial']
        assert rec['prompt_change'] == {'text': 0.0, 'vision': 0.0, 'all': 0.0}
        assert rec['image_shift'] == 0.0 and rec['text_shift'] == {'rms': 0.0, 'mean': 0.0, 'pred': 0.0}
        assert rec['consistency'] == {'pred': None, 'mean': None}


def test_text_only_prompts_have_no_vision_branch_and_no_image_shift(backbone):
    recorder, _, _ = recorded(backbone, 'coop', steps=1)
    for rec in recorder.records:
        assert set(rec['prompt_change']) == {'text', 'all'} and rec['prompt_change']['text'] > 1e-3
        assert rec['image_shift'] == 0.0 and rec['text_shift']['rms'] > 1e-3
        assert rec['consistency'] == {'pred': None, 'mean': None}  # no image shift: no direction to compare


def test_fast_engine_samples_together_record_what_the_reference_loop_records(backbone, maple_run):
    reference = maple_run[0].records
    fast, method, _ = recorded(backbone, 'maple', steps=2, mode='fast', batch_size=3)  # copies of 3, then 3
    for a, b in zip(reference, fast.records):
        assert a['index'] == b['index'] and a['pred'] == b['pred'] and a['pred_initial'] == b['pred_initial']
        for key in ('prompt_change', 'text_shift', 'consistency'):
            for k in a[key]:
                assert b[key][k] == pytest.approx(a[key][k], rel=1e-3, abs=1e-5), (key, k)
        assert b['image_shift'] == pytest.approx(a['image_shift'], rel=1e-3, abs=1e-5)


class _TamperPredictFeatures(Hook):
    batch_safe = True
    priority = 'HIGHEST'

    def after_predict(self, runner, ctx, result):
        ctx.extra['predict_text_features'] = ctx.extra['predict_text_features'].flip(0)


def test_features_that_do_not_give_the_logits_are_refused(backbone):
    with pytest.raises(RuntimeError, match='do not give its logits'):
        recorded(backbone, 'coop', extra_hooks=[_TamperPredictFeatures()])


def test_online_reset_measures_every_sample_from_the_bound_initial_prompts(backbone):
    """NoReset carries the prompts on: sample n starts where n-1 ended, and is measured from the run's initial
    prompts (the state the method binds), the initial image feature recomputed at those prompts."""
    snaps = Snapshots()
    recorder, _, _ = recorded(backbone, 'maple', extra_hooks=[snaps], reset=dict(type='NoReset'))
    views = make_batch()['views']
    bound = snaps.before[10]
    assert not torch.equal(snaps.before[12]['ctx'], bound['ctx'])  # the third sample starts from moved prompts
    f0_bound, T0, _ = features_of(backbone, 'maple', bound, views[2])
    for b, rec in enumerate(recorder.records):
        after = snaps.after[rec['index']]
        assert rec['prompt_change']['all'] == approx(norm_of_change(bound, after, TEXT + VISION))
        f0, _, z0 = features_of(backbone, 'maple', bound, views[b])
        fa, Ta, _ = features_of(backbone, 'maple', after, views[b])
        assert rec['image_shift'] == approx(float((fa - f0).double().norm()))
        assert rec['confidence_initial'] == approx(float(z0.softmax(-1).max()))
        assert rec['text_shift']['rms'] == approx(float((Ta - T0).double().pow(2).sum(1).mean().sqrt()))
