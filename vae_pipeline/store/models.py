"""Trained models (``TrainResult``) stored by day and name, on either backend.

A model is one row of its table (``trained_vae``, ``trained_cvae``: the columns of
:mod:`vae_pipeline.store.schemas`), so the report and the dashboard read its config and
history like any table. Its weights are a ``torch.save``'d state dict loaded with
``weights_only=True`` (:mod:`vae_pipeline.core.model_store`): inline as a BLOB in DuckDB, where
the row's transaction makes the write atomic; as a file under the Parquet root otherwise,
written under a fresh name *before* the row that names it (the row is the commit: a writer
killed in between leaves the old row and its old weights file intact), the previous file
removed after.
"""

from __future__ import annotations

import uuid

import pandas as pd

from vae_pipeline.core.model_store import record_to_result, result_to_record
from vae_pipeline.core.training import TrainResult
from vae_pipeline.store.base import Span, Store


def model_column(name: str) -> str:
    """The ``model`` column of table ``name`` ("trained_vae" -> "vae")."""
    return name.removeprefix("trained_")


class ModelStore:
    """``save_model`` / ``load_model`` / ``stored_days`` / ``latest`` over a store's model tables."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def save_model(self, day, name: str, result: TrainResult) -> None:
        self.save_models(name, {pd.Timestamp(day): result}, Span.days(day, day))

    def save_models(self, name: str, results: dict, span: Span) -> None:
        """Replace the models of table ``name`` in ``span`` by ``results`` (day -> TrainResult)."""
        rows, old_refs = [], []
        if not self.store.inline_blobs:
            old = self.store.read(name, span)
            old_refs = list(old["weights_ref"].dropna()) if "weights_ref" in old else []
        for day, result in sorted(results.items()):
            record = {"date": pd.Timestamp(day), "model": model_column(name),
                      **result_to_record(result)}  # fmt: skip
            if not self.store.inline_blobs:
                ref = f"{name}/weights/{pd.Timestamp(day):%Y-%m-%d}-{uuid.uuid4().hex}.pt"
                self.store.put_blob(ref, record.pop("weights"))
                record["weights"], record["weights_ref"] = None, ref
            rows.append(record)
        self.store.replace(name, pd.DataFrame(rows), span)
        for ref in old_refs:  # the rows naming them are gone
            self.store.delete_blob(ref)

    def records(self, name: str, span: Span | None = None) -> pd.DataFrame:
        """The stored rows (weights inline on either backend), one per day."""
        rows = self.store.read(name, span)
        if len(rows) and not self.store.inline_blobs:
            rows = rows.assign(weights=[self.store.get_blob(r) for r in rows["weights_ref"]])
        return rows

    def load_models(self, name: str, span: Span | None = None) -> dict[str, TrainResult]:
        """Partition key (YYYY-MM-DD) -> model, for every day of ``span`` stored."""
        rows = self.records(name, span)
        return {
            f"{pd.Timestamp(r['date']):%Y-%m-%d}": record_to_result(r) for _, r in rows.iterrows()
        }

    def load_model(self, day, name: str) -> TrainResult:
        """The model of ``day``; ``LookupError`` naming what is missing when none is stored."""
        found = self.load_models(name, Span.days(day, day))
        if len(found) != 1:
            raise LookupError(
                f"no {name} stored for {pd.Timestamp(day):%Y-%m-%d} in {self.store.describe()}"
            )
        return next(iter(found.values()))

    def stored_days(self, name: str) -> list[pd.Timestamp]:
        rows = self.store.read(name)
        return sorted(pd.to_datetime(rows["date"]).unique()) if len(rows) else []

    def latest(self, name: str, before=None) -> tuple[pd.Timestamp, TrainResult] | None:
        """The newest stored model (strictly before ``before`` when given), or None."""
        days = [d for d in self.stored_days(name) if before is None or d < pd.Timestamp(before)]
        return (days[-1], self.load_model(days[-1], name)) if days else None
