"""Per-sample prediction records: built from ``SampleResult`` s, written as JSON lines, read back on resume.

A record keeps the top-k classes and the confidence rather than the full logits, so a 50k-image,
1000-class run stays a few MB and can be resumed from disk. A sample whose logits are not finite (NaN or
infinite: fp16 overflow, a diverged adaptation step) is recorded as *failed*: ``nonfinite: true``, no prediction
(``pred = -1``, empty ``topk``, ``confidence = null``) and ``correct: false`` — it counts as wrong in every
accuracy and is never scored as some class.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import torch

TOPK_STORED = 5


def is_finite(result) -> bool:
    return bool(torch.isfinite(result.logits).all())


def _loss_terms(terms: dict) -> dict:
    """Rounded loss values; a non-finite one is ``null`` (strict JSON has no NaN)."""
    return {k: round(v, 6) if math.isfinite(v) else None for k, v in terms.items()}


def to_record(result) -> dict:
    if not is_finite(result):
        rec = dict(index=result.index, label=result.label, pred=-1, correct=False, topk=[], confidence=None,
                   path=result.path, nonfinite=True)
        if result.loss_terms:
            rec['loss'] = _loss_terms(result.loss_terms)
        return rec
    probs = result.logits.float().softmax(dim=-1)
    k = min(TOPK_STORED, probs.numel())
    conf, top = probs.topk(k)
    rec = dict(index=result.index, label=result.label, pred=int(top[0]), correct=bool(int(top[0]) == result.label),
               topk=top.tolist(), confidence=round(float(conf[0]), 6), path=result.path)
    if result.loss_terms:
        rec['loss'] = _loss_terms(result.loss_terms)
    return rec


@dataclass
class PredictionTable:
    """Column view of prediction records for the metrics."""
    labels: torch.Tensor        # [N]
    topk: torch.Tensor          # [N, K] class indices, best first (padded with -1)
    confidence: torch.Tensor    # [N]
    num_classes: int | None = None  # the label space's size, where the caller knows it (a run does)

    @classmethod
    def from_records(cls, records: Iterable[dict], num_classes: int | None = None) -> 'PredictionTable':
        records = list(records)
        if not records:
            return cls(torch.zeros(0, dtype=torch.long), torch.zeros(0, TOPK_STORED, dtype=torch.long),
                       torch.zeros(0), num_classes)
        width = max(max(len(r['topk']) for r in records), 1)
        topk = torch.full((len(records), width), -1, dtype=torch.long)  # -1 never equals a label
        for i, r in enumerate(records):
            topk[i, :len(r['topk'])] = torch.tensor(r['topk'], dtype=torch.long)
        conf = [float('nan') if r['confidence'] is None else r['confidence'] for r in records]
        return cls(torch.tensor([r['label'] for r in records], dtype=torch.long), topk,
                   torch.tensor(conf, dtype=torch.float), num_classes)

    def __len__(self) -> int:
        return int(self.labels.numel())


class PredictionWriter:
    """Appends records to ``predictions.jsonl`` and flushes after every batch (nothing computed is lost)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fh = self.path.open('a')

    def write(self, records: Iterable[dict]) -> None:
        for rec in records:
            self._fh.write(json.dumps(rec) + '\n')
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def drop_torn_tail(path: Path) -> bool:
    """Cut a partial last line left by an interrupted write, so appends start on a fresh line."""
    path = Path(path)
    if not path.exists():
        return False
    data = path.read_bytes()
    if not data or data.endswith(b'\n'):
        return False
    path.write_bytes(data[:data.rfind(b'\n') + 1])
    return True


def read_records(path: Path) -> list[dict]:
    """Records of a (possibly interrupted) predictions file; a torn last line is dropped."""
    path = Path(path)
    if not path.exists():
        return []
    records = []
    lines = path.read_text().splitlines()
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i == len(lines) - 1:  # interrupted mid-write
                break
            raise ValueError(f'{path}:{i + 1} is not valid JSON; the predictions file is corrupt') from None
    return records
