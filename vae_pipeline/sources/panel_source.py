"""A returns source backed by a cleaned in-memory panel: what the csv and yfinance sources share.

The panel is cleaned once over its whole history (``core.cleaning``), then served a slice at
a time; because every cleaning rule looks at most one day ahead, a day's rows are the same
whichever slice (one partition or a backfill range) asks for them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from vae_pipeline.core.cleaning import CleaningConfig, CleanResult, clean_prices, clean_returns
from vae_pipeline.core.panel import to_long
from vae_pipeline.sources.base import OBSERVABLE_COLUMNS
from vae_pipeline.sources.files import PanelInput
from vae_pipeline.sources.observables import build_observables


@dataclass
class LoadedPanel:
    """Cleaned returns (wide, only days holding a return), observables and sectors."""

    returns: pd.DataFrame
    cleaned: CleanResult
    observables: pd.DataFrame
    observables_info: dict
    sectors: pd.Series
    notes: dict = field(default_factory=dict)
    label: str = ""


def build_panel(
    data: PanelInput,
    config: CleaningConfig,
    sectors: pd.Series | None = None,
    factors: pd.DataFrame | None = None,
    index_returns: pd.Series | None = None,
    macro: pd.DataFrame | None = None,
    labels: dict[str, str] | None = None,
) -> LoadedPanel:
    """Clean ``data`` and attach observables (with named fallbacks) and sectors."""
    cleaned = (clean_prices if data.kind == "prices" else clean_returns)(data.wide, config)
    wide = cleaned.returns
    wide = wide[wide.notna().any(axis=1)]
    if wide.empty:
        raise ValueError(f"{data.path}: no returns left after cleaning (one price per name?)")
    equal_weight = wide.mean(axis=1)
    observables, info = build_observables(
        wide.index, equal_weight, factors, index_returns, macro, labels
    )
    sectors = sectors if sectors is not None else pd.Series(dtype=str)
    return LoadedPanel(
        returns=wide,
        cleaned=cleaned,
        observables=observables,
        observables_info=info,
        sectors=sectors.reindex(wide.columns).fillna("Unknown").rename("sector"),
        notes=dict(data.notes),
        label=data.path,
    )


class PanelSource:
    """``ReturnsSource`` over a :class:`LoadedPanel`; no truth is known on real data."""

    name = "panel"

    def __init__(self, min_names: int = 10):
        self.min_names = min_names

    @property
    def panel(self) -> LoadedPanel:  # pragma: no cover - subclasses load it
        raise NotImplementedError

    # ---- the ReturnsSource protocol
    def returns(self, start, end) -> pd.DataFrame:
        wide = self.panel.returns
        return to_long(wide.loc[pd.Timestamp(start) : pd.Timestamp(end)])

    def observables(self, start, end) -> pd.DataFrame:
        obs = self.panel.observables
        keep = (obs["date"] >= pd.Timestamp(start)) & (obs["date"] <= pd.Timestamp(end))
        return obs.loc[keep, OBSERVABLE_COLUMNS].reset_index(drop=True)

    def sectors(self) -> pd.Series:
        return self.panel.sectors

    def oracle_covariance(self, date, tickers) -> None:
        return None

    def planted_anomalies(self) -> None:
        return None

    def true_factors(self, start, end) -> None:
        return None

    def first_date(self) -> pd.Timestamp:
        return pd.Timestamp(self.panel.returns.index[0])

    def last_date(self) -> pd.Timestamp:
        return pd.Timestamp(self.panel.returns.index[-1])

    # ---- metadata for the ingest assets
    def returns_report(self, start, end) -> dict:
        """What cleaning did over [start, end], the coverage rule and the window universe."""
        panel, cfg = self.panel, self.panel.cleaned.config
        end = min(pd.Timestamp(end), self.last_date())
        report: dict = {
            "source_file": panel.label,
            "layout": panel.notes.get("layout", ""),
            "coverage_rule": cfg.describe(),
            **{f"cleaned_{k}": v for k, v in panel.cleaned.counts(start, end).items()},
        }
        report.update(self._missing(start, end))
        upto = panel.returns.loc[:end]
        if len(upto):
            window = upto.iloc[-cfg.window :]
            report["window_universe"] = int(window.notna().all(axis=0).sum())
            report["window_days_available"] = int(len(window))
        report["provisional_last_day"] = bool(end >= self.last_date())
        for key in (
            "duplicate_rows_dropped",
            "unsorted_dates_sorted",
            "non_trading_rows_dropped",
            "empty_rows_dropped",
        ):
            if key in panel.notes:
                report[f"file_{key}"] = panel.notes[key]
        if "tickers_without_data" in panel.notes:
            report["file_tickers_without_data"] = ", ".join(panel.notes["tickers_without_data"])
        return report

    def _missing(self, start, end) -> dict:
        """Listed names without a return on a day of [start, end] (a blank or NaN cell, a
        dropped stale or gap return): left out of that day's cross-section and, with the
        default coverage rule, out of every window holding the day. Counted, never silent."""
        wide = self.panel.returns
        listed = wide.notna().cummax().shift(1, fill_value=False)  # a return on an earlier day
        span = (wide.index >= pd.Timestamp(start)) & (wide.index <= pd.Timestamp(end))
        gaps = (listed & wide.isna()).loc[span]
        count = int(gaps.to_numpy().sum())
        if not count:
            return {"missing_returns": 0}
        cells = gaps.stack()
        cells = cells[cells]
        shown = ", ".join(f"{t} on {d:%Y-%m-%d}" for d, t in cells.index[:5])
        return {"missing_returns": count, "missing_returns_example": shown}

    def observables_report(self) -> dict:
        """Which series each observable is, and how many days fell back."""
        return {f"observable_{k}": v for k, v in self.panel.observables_info.items()}

    def window_universe(self, end, window: int) -> list[str]:
        """Names with a return on each of the ``window`` days ending at ``end`` (for studies)."""
        upto = self.panel.returns.loc[: pd.Timestamp(end)].iloc[-window:]
        return [str(c) for c in upto.columns[np.asarray(upto.notna().all(axis=0))]]
