"""The unreadable-image ledger of a run: every image that could not be read, counted and named, never lost.

Loops read with ``ViewDataset(skip_unreadable=True)``, which turns an unreadable image into a record
``dict(index, path, error)``; the loop hands each batch's records to :meth:`UnreadableLedger.add`. The first
unreadable image of the run is named in a warning (with where the rest are listed); the ledger keeps every one,
per split ('test', 'train', 'val', 'proxy'), and its state is JSON so a resumed run carries it on.
"""
from __future__ import annotations

from typing import Iterable

from promptsync.utils.logging import get_logger

logger = get_logger('ledger')


class UnreadableLedger:
    def __init__(self, listed_in: str = 'the run files'):
        self.listed_in = listed_in                      # where a reader finds every record (for the warning)
        self.records: dict[str, dict[str, dict]] = {}   # split -> path -> record (latest error)
        self.warned = False

    def add(self, records: Iterable[dict], split: str = 'test') -> list[dict]:
        records = list(records)
        if records and not self.warned:
            first = records[0]
            logger.warning('skipping unreadable image %s (index %d): %s; every skipped image is counted and listed '
                           'in %s', first['path'], first['index'], first['error'], self.listed_in)
            self.warned = True
        bucket = self.records.setdefault(split, {})
        for rec in records:
            bucket[rec['path']] = dict(rec)
        return records


    def count(self, split: str | None = None) -> int:
        return sum(len(v) for k, v in self.records.items() if split is None or k == split)


    def entries(self, split: str) -> list[dict]:
        return sorted(self.records.get(split, {}).values(), key=lambda r: (r['index'], r['path']))

    def state_dict(self) -> dict:
        return {split: dict(bucket) for split, bucket in self.records.items()}

    def load_state_dict(self, state: dict) -> None:
        self.records = {split: {p: dict(r) for p, r in bucket.items()} for split, bucket in (state or {}).items()}
