"""The carried state of an online TTA method (``TTAMethod.stateful``: TDA, DPE) across batches and resumed runs.

An online method's prediction for a sample depends on every sample before it in the stream, so:

* the stream runs on one process: sharding (``--shard``, torchrun) is refused with an explanation;
* the method's :meth:`~promptsync.tta.methods.base.TTAMethod.state_dict` is saved to ``method_state.safetensors``
  with the samples it has seen, in order (``done``: predicted and unreadable ones), after a batch once
  ``every_s`` seconds have passed since the last save (``test_cfg=dict(type='TTALoop', state_every_s=60)``; 0 =
  after every batch) and at the end of the stream — a 1000-class TDA state is 12 MB;
* a resumed run loads that state and continues after its last sample; predictions written after the last saved
  state (an interruption between the two writes) are recomputed from the state, and a stream that no longer starts
  with the saved ``done`` (another ``data.max_samples``) is refused — its state would belong to another stream.
"""
from __future__ import annotations

import time
from pathlib import Path

from promptsync.errors import ConfigError, ProvenanceError
from promptsync.utils.logging import get_logger
from promptsync.utils.state_file import load_state, save_state

logger = get_logger('test')
STATE = 'method_state.safetensors'


def refuse_shards(method_name: str, shard: tuple[int, int] | None) -> None:
    if shard is not None:
        raise ConfigError(
            f'{method_name} is an online method (its predictions depend on the samples before them in the stream): '
            f'split into shard {shard[0]}/{shard[1]} each process would run another stream and the predictions would '
            'differ from one process', where='--shard / torchrun',
            fix='run it on one process (no --shard, no torchrun); data.batch_size does not change its predictions')


class OnlineState:
    """Save and restore ``method``'s state in ``work_dir`` for the stream ``stream`` (dataset indices, in order)."""

    def __init__(self, method, work_dir: Path, fingerprint: str, stream: list[int], every_s: float = 60.0):
        self.method, self.path, self.fingerprint, self.stream = method, Path(work_dir) / STATE, fingerprint, stream
        self.every_s = float(every_s)
        self.done: list[int] = []      # the samples the method has seen, in stream order
        self.saved = 0                 # how many of them the file on disk covers
        self.last_save = time.monotonic()

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)

    def resume(self, previous: dict[int, dict]) -> dict[int, dict]:
        """Load the saved state; returns the previous predictions it covers (the rest is recomputed)."""
        if not self.path.exists():
            if previous:
                logger.warning('%d earlier predictions of the online method have no saved state (%s): the stream '
                               'starts over and they are recomputed', len(previous), self.path)
            return {}
        tensors, doc = load_state(self.path)
        done = [int(i) for i in doc.get('done', [])]
        if doc.get('fingerprint') != self.fingerprint or self.stream[:len(done)] != done:
            raise ProvenanceError(
                f'{self.path} holds the state of an online method after another stream or config (it has seen '
                f'{len(done)} samples, which are not the first {len(done)} of this run\'s stream)', where=str(self.path),
                fix='use --no-resume (the stream starts over), or the data.max_samples / data.stream of that run')
        self.method.load_state_dict(tensors)
        self.done, self.saved = done, len(done)
        kept = {i: r for i, r in previous.items() if i in set(done)}
        if len(kept) < len(previous):
            logger.info('%d predictions written after the last saved state are recomputed', len(previous) - len(kept))
        return kept

    def advance(self, seen: list[int]) -> None:
        """Record that the samples ``seen`` (this batch, in stream order) went through the method; saves the state
        when ``every_s`` has passed."""
        expected = self.stream[len(self.done):len(self.done) + len(seen)]
        if sorted(seen) != sorted(expected):
            raise RuntimeError(f'the loader left the stream order: got {seen[:5]}..., expected {expected[:5]}...')
        self.done += expected
        if time.monotonic() - self.last_save >= self.every_s:
            self.save()

    def save(self) -> None:
        """Write the state after ``done`` (a no-op when the file already covers it)."""
        if self.saved == len(self.done) and self.path.exists():
            return
        save_state(self.path, self.method.state_dict(), dict(fingerprint=self.fingerprint, done=self.done))
        self.saved, self.last_save = len(self.done), time.monotonic()
