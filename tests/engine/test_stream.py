"""data.stream (imbalanced / ordered test streams) and online (stateful) methods in the runner: the stream against
a hand count, its record in metrics.json, and exact resume / refused sharding for a method that carries state."""
import json

import pytest
import torch

from promptsync.datasets.fake import make_image_folder
from promptsync.engine.loops.online_state import OnlineState
from promptsync.engine.stream import build_stream, class_ranks
from promptsync.errors import ConfigError
from promptsync.evaluation import read_records
from promptsync.registry import TTA_METHODS
from promptsync.tta.context import SampleResult
from promptsync.tta.methods.base import TTAMethod

from ..conftest import interrupt
from ..tools.helpers import ROOT, load_tool, options

ZS = str(ROOT / 'configs/zeroshot/vit_b16_imagenet_r.py')


def labels_of(counts):
    return [c for c, n in enumerate(counts) for _ in range(n)]


def test_long_tail_counts_follow_the_formula_by_hand():
    labels = labels_of([8] * 5)
    s = build_stream(labels, list(range(len(labels))), dict(imbalance='long_tail', ratio=8, seed=3))
    ranks = class_ranks(list(range(5)), 3)
    assert sorted(ranks.values()) == list(range(5))
    want = {c: max(1, round(8 * 8 ** (-ranks[c] / 4))) for c in range(5)}  # 8, 5, 3, 2, 1 by rank
    assert sorted(want.values()) == [1, 2, 3, 5, 8]
    got = {c: sum(labels[i] == c for i in s.indices) for c in range(5)}
    assert got == want and s.info['achieved_ratio'] == 8.0 and len(set(s.indices)) == len(s.indices)
    assert s.info['class_counts'] == {str(c): n for c, n in want.items()}
    again = build_stream(labels, list(range(len(labels))), dict(imbalance='long_tail', ratio=8, seed=3))
    assert again.indices == s.indices  # reproducible
    other = build_stream(labels, list(range(len(labels))), dict(imbalance='long_tail', ratio=8, seed=4))
    assert other.indices != s.indices


def test_head_defaults_to_the_smallest_class_and_orders():
    labels = labels_of([6, 4, 9])
    idx = list(range(len(labels)))
    s = build_stream(labels, idx, dict(imbalance='long_tail', ratio=4, order='class_sorted', seed=0))
    counts = [sum(labels[i] == c for i in s.indices) for c in range(3)]
    assert max(counts) == 4 and min(counts) == 1  # head = 4 (smallest class), tail = 4 / 4
    assert [labels[i] for i in s.indices] == sorted(labels[i] for i in s.indices)
    ranks = class_ranks([0, 1, 2], 0)
    head_first = build_stream(labels, idx, dict(imbalance='long_tail', ratio=4, order='head_first', seed=0))
    assert [ranks[labels[i]] for i in head_first.indices] == sorted(ranks[labels[i]] for i in head_first.indices)
    tail_first = build_stream(labels, idx, dict(imbalance='long_tail', ratio=4, order='tail_first', seed=0))
    assert [labels[i] for i in tail_first.indices][0] == max(ranks, key=ranks.get)
    shuffled = build_stream(labels, idx, dict(order='shuffled', seed=0))
    assert sorted(shuffled.indices) == idx and shuffled.indices != idx
    assert build_stream(labels, idx, dict(order='as_is')).indices == idx
    assert build_stream(labels, idx, None).indices == idx and build_stream(labels, idx, None).info == {}


def test_a_ratio_the_rounded_counts_cannot_hold_is_refused_with_the_head_that_works():
    labels = labels_of([25] * 20)
    with pytest.raises(ConfigError) as err:  # tail round(25 / 10) = 2: ratio 12.5
        build_stream(labels, list(range(500)), dict(imbalance='long_tail', ratio=10))
    assert 'ratio of 12.5, not 10' in str(err.value) and 'head=20' in err.value.fix
    with pytest.raises(ConfigError) as err:  # a tail of one image: ratio 25
        build_stream(labels, list(range(500)), dict(imbalance='long_tail', ratio=100))
    assert 'at least 100' in err.value.fix
    fixed = build_stream(labels, list(range(500)), dict(imbalance='long_tail', ratio=10, head=20))
    assert fixed.info['achieved_ratio'] == 10.0 and fixed.info['class_counts'] and len(fixed.indices) < 500


@pytest.mark.parametrize('cfg, where', [
    (dict(imbalance='longtail', ratio=10), 'data.stream.imbalance'),
    (dict(imbalance='long_tail'), 'data.stream.ratio'),
    (dict(imbalance='long_tail', ratio=0.5), 'data.stream.ratio'),
    (dict(order='sorted'), 'data.stream.order'),
    (dict(ratio=10), 'data.stream'),
    (dict(imbalance='long_tail', ratio=10, seeds=1), 'data.stream'),
    (dict(seed='1'), 'data.stream.seed'),
])
def test_bad_stream_configs_are_refused(cfg, where):
    with pytest.raises(ConfigError) as err:
        build_stream([0, 1], [0, 1], cfg)
    assert err.value.where == where


@TTA_METHODS.register_module(force=True)
class StreamCounter(TTAMethod):
    """A test online method: zero-shot logits + 3 x the number of earlier samples predicted as each class."""
    stateful = True

    def __init__(self, model, hooks=None, seed=0, resources=None, views=None):
        super().__init__(model, hooks, seed, resources)
        with torch.no_grad():
            self.text = model.text_features()
        self.counts = torch.zeros(self.text.shape[0])

    def process_batch(self, batch):
        views, labels, indices, paths = self.unpack(batch)
        out = []
        for b in range(len(labels)):
            with torch.no_grad():
                z = self.model.logits(self.model.image_features(views[b, :1]), self.text)[0] + 3.0 * self.counts
            self.counts[int(z.argmax())] += 1
            out.append(SampleResult(index=indices[b], label=labels[b], logits=z, path=paths[b]))
        return out

    def state_dict(self):
        return dict(counts=self.counts.clone())

    def load_state_dict(self, state):
        self.counts = state['counts'].clone()


@pytest.fixture(scope='module')
def folder(tmp_path_factory):
    return make_image_folder(tmp_path_factory.mktemp('stream'), ['cat', 'dog', 'owl', 'fox'], per_class=6)


@pytest.fixture(scope='module')
def test_tool():
    return load_tool('test')


def run(test_tool, work_dir, overrides, *extra, stream=None, method='StreamCounter'):
    ov = dict(overrides, **{'tta.type': method})
    tail = [f'data.stream={stream}'] if stream else []
    argv = [ZS, '--work-dir', str(work_dir), *extra, *options(ov), *tail]
    return test_tool.main(argv)


@pytest.fixture
def ov(tiny_overrides, folder):
    return dict(tiny_overrides, **{'data.dataset.root': str(folder)})


LT = "dict(imbalance='long_tail',ratio=6,order='shuffled',seed=1)"


def test_a_long_tailed_stream_end_to_end_is_recorded(test_tool, tmp_path, ov):
    out = run(test_tool, tmp_path / 'lt', ov, stream=LT, method='ZeroShot')
    metrics = json.loads((tmp_path / 'lt' / 'metrics.json').read_text())
    stream = metrics['stream']
    assert sorted(stream['class_counts'].values()) == [1, 2, 3, 6] and stream['achieved_ratio'] == 6.0
    assert out['num_samples'] == 12 and metrics['num_selected'] == 12
    records = read_records(tmp_path / 'lt' / 'predictions.jsonl')
    by_class = {}
    for r in records:
        by_class[r['label']] = by_class.get(r['label'], 0) + 1
    assert sorted(by_class.values()) == [1, 2, 3, 6]
    per_class = {row['label']: row for row in metrics['per_class']}
    assert {c: row['n'] for c, row in per_class.items()} == {c: by_class.get(c, 0) for c in range(4)}
    label_share = 100.0 * max(by_class.values()) / 12
    assert metrics['metrics']['label_max_share'] == pytest.approx(label_share)
    run_json = json.loads((tmp_path / 'lt' / 'run.json').read_text())
    assert run_json['selection']['stream'] == dict(imbalance='long_tail', ratio=6, order='shuffled', seed=1)


def test_online_method_is_independent_of_batch_size_and_depends_on_the_order(test_tool, tmp_path, ov):
    a = run(test_tool, tmp_path / 'a', ov, stream="dict(order='shuffled',seed=0)")
    b = run(test_tool, tmp_path / 'b', dict(ov, **{'data.batch_size': 5}), stream="dict(order='shuffled',seed=0)")
    c = run(test_tool, tmp_path / 'c', ov, stream="dict(order='class_sorted')")
    ra, rb, rc = (read_records(tmp_path / d / 'predictions.jsonl') for d in 'abc')
    assert ra == rb and ra != rc
    assert a['online'].startswith('one stream') and b['num_samples'] == c['num_samples'] == 24


def test_online_method_refuses_shards(test_tool, tmp_path, ov):
    with pytest.raises(ConfigError) as err:
        run(test_tool, tmp_path / 's', ov, '--shard', '0/2')
    assert 'online method' in str(err.value)


@pytest.mark.parametrize('every', [0, 60])
def test_online_resume_after_an_interruption_is_exact(test_tool, tmp_path, ov, monkeypatch, every):
    """every=0: the state is saved after each batch and the run is cut after batch 3's predictions, before its state;
    every=60: no state was saved before the cut, so the stream starts over."""
    stream = "dict(order='shuffled',seed=2)"
    ov = dict(ov, **{'data.batch_size': 4, 'test_cfg.type': 'TTALoop', 'test_cfg.state_every_s': every})
    full = run(test_tool, tmp_path / 'full', ov, stream=stream)
    restore = interrupt(monkeypatch, OnlineState, 'advance', lambda n, *a: n == 3)  # batch 3 predicted, not advanced
    with pytest.raises(KeyboardInterrupt):
        run(test_tool, tmp_path / 'cut', ov, stream=stream)
    restore()
    assert len(read_records(tmp_path / 'cut' / 'predictions.jsonl')) == 12
    resumed = run(test_tool, tmp_path / 'cut', ov, stream=stream)
    kept = 8 if every == 0 else 0
    assert resumed['num_resumed'] == kept and resumed['num_new'] == 24 - kept
    assert read_records(tmp_path / 'cut' / 'predictions.jsonl') == read_records(tmp_path / 'full' / 'predictions.jsonl')
    assert resumed['metrics'] == full['metrics']


def test_online_resume_with_another_stream_is_refused(test_tool, tmp_path, ov):
    from promptsync.errors import ProvenanceError
    run(test_tool, tmp_path / 'r', ov, '--max-samples', '10', stream="dict(order='shuffled',seed=2)")
    with pytest.raises(ProvenanceError) as err:
        run(test_tool, tmp_path / 'r', ov, stream="dict(order='shuffled',seed=2)")
    assert 'another stream' in str(err.value)
