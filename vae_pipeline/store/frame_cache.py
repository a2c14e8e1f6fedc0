"""Frames read from the DuckDB file, kept per process while the file is unchanged.

One materialisation reads the same slices many times: every model asset of partition d loads
the ~530-day ``raw_returns`` window, and each same-day table (the scaler, the models, the
latents) is read by several downstream assets. Each read opens the file (a DuckDB connection
costs ~10-30 ms), scans and pivots. :class:`FrameCache` keeps what was read, so only the first
reader of a slice pays.

Never stale. An entry is stamped with the file's :func:`file_signature` (inode, size, mtime and
ctime of the file and of its write-ahead log) taken while the reading connection held DuckDB's
exclusive file lock, and is served only while the file still has that signature. A write by
any other process must append to the WAL or rewrite the file, so it changes the signature and
drops every entry. This process's own writes report to :meth:`FrameCache.wrote` with the
signatures taken under the lock before the write and after its COMMIT and CHECKPOINT: the
written table's entries are dropped, the others (still exact) are re-stamped. Reads never
change the file (checked on DuckDB 1.5: opening, reading and closing leave the signature as is).

Bounded (least recently used entries go first) and per process: the multiprocess executor's
step processes each start empty. Every hit is a copy, so a reader may modify what it gets.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

Signature = tuple


def file_signature(database: str | Path) -> Signature:
    """(inode, size, mtime_ns, ctime_ns) of the DuckDB file and of its ``.wal`` (None if absent)."""
    out = []
    for path in (str(database), f"{database}.wal"):
        try:
            st = os.stat(path)
        except FileNotFoundError:
            out.append(None)
        else:
            out.append((st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    return tuple(out)


@dataclass
class _Entry:
    table: str
    frame: pd.DataFrame
    stamp: Signature
    nbytes: int


class FrameCache:
    """Frames by (database, key), each valid while its database has the stamped signature."""

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[str, object], _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def _db(database: str | Path) -> str:
        return os.path.realpath(str(database))

    def get(self, database: str | Path, key: object) -> pd.DataFrame | None:
        """A copy of the frame stored under ``key``, or None (absent, or the file changed)."""
        db = self._db(database)
        with self._lock:
            entry = self._entries.get((db, key))
            if entry is None:
                self.misses += 1
                return None
            if entry.stamp != file_signature(db):
                self._drop(lambda d, e: d == db)  # the file changed behind us: nothing holds
                self.misses += 1
                return None
            self._entries.move_to_end((db, key))
            self.hits += 1
            return entry.frame.copy()

    def put(
        self,
        database: str | Path,
        key: object,
        table: str,
        frame: pd.DataFrame,
        stamp: Signature,
        max_bytes: int,
    ) -> None:
        """Keep ``frame`` (read from ``table`` when the file had signature ``stamp``)."""
        nbytes = int(frame.memory_usage(deep=True, index=True).sum())
        if max_bytes <= 0 or nbytes > max_bytes:
            return
        db = self._db(database)
        with self._lock:
            self._entries[(db, key)] = _Entry(table, frame.copy(), stamp, nbytes)
            self._entries.move_to_end((db, key))
            total = sum(e.nbytes for e in self._entries.values())
            while total > max_bytes and self._entries:
                _, oldest = self._entries.popitem(last=False)
                total -= oldest.nbytes

    def wrote(
        self, database: str | Path, table: str, before: Signature | None, after: Signature | None
    ) -> None:
        """This process wrote ``table``: drop its entries; re-stamp the rest when they were
        current just before the write (``before``) and the file's state after it is known."""
        db = self._db(database)
        with self._lock:
            self._drop(lambda d, e: d == db and (e.table == table or e.stamp != before
                                                 or after is None))  # fmt: skip
            for (d, _), entry in self._entries.items():
                if d == db:
                    entry.stamp = after

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _drop(self, doomed) -> None:
        for k in [k for k, e in self._entries.items() if doomed(k[0], e)]:
            del self._entries[k]


# The process's one cache (Dagster creates IO managers per run or per step; frames outlive them).
FRAMES = FrameCache()
