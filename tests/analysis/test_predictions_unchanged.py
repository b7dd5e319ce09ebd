"""A run with the AdaptationRecorder predicts exactly what a run without it predicts, in the reference loop and in
the fast engine, and the fast engine keeps adapting samples together with it (the hook is batch-safe)."""
import pytest
import torch

from promptsync.tta.methods.episodic_plan import plan_engine

from .helpers import N_SAMPLES, make_batch, make_method, recorded


@pytest.mark.parametrize('kind', ['coop', 'maple'])
@pytest.mark.parametrize('mode', ['reference', 'fast'])
def test_same_predictions_with_and_without_the_recorder(backbone, kind, mode):
    without = make_method(backbone, kind, mode=mode).process_batch(make_batch())
    recorder, method, with_hook = recorded(backbone, kind, mode=mode)
    assert [r.index for r in with_hook] == [r.index for r in without]
    for a, b in zip(without, with_hook):
        assert torch.equal(a.logits, b.logits)
    assert len(recorder.records) == N_SAMPLES
    plan = plan_engine(method, N_SAMPLES)
    assert (plan.mode, plan.group) == ((mode, N_SAMPLES) if mode == 'fast' else ('reference', 1))
