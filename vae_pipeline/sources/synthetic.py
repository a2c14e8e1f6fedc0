"""The offline default: the seeded synthetic panel, served day by day.

The generator is prefix-stable, so the cross-section of day d is the same whether it
is produced in a one-day partition run or in a history backfill.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from vae_pipeline.core.synthetic import SyntheticPanel, generate_panel
from vae_pipeline.core.truth import GroundTruth
from vae_pipeline.sources.base import OBSERVABLE_COLUMNS, to_long


@lru_cache(maxsize=8)
def _panel(start: str, end: str, n_names: int, kind: str, seed: int) -> SyntheticPanel:
    return generate_panel(start=start, end=end, n_names=n_names, kind=kind, seed=seed)


class SyntheticSource:
    """Seeded synthetic returns with their truth (factors, oracle covariance, anomalies)."""

    name = "synthetic"

    def __init__(
        self, start: str = "2015-01-02", n_names: int = 60, kind: str = "linear", seed: int = 42
    ):
        self.start, self.n_names, self.kind, self.seed = str(start), n_names, kind, seed

    def panel(self, end: pd.Timestamp) -> SyntheticPanel:
        """The panel from the configured start to ``end`` (cached)."""
        end = pd.Timestamp(end).strftime("%Y-%m-%d")
        if end < self.start:
            raise ValueError(f"{end} is before the synthetic panel's start {self.start}")
        return _panel(self.start, end, self.n_names, self.kind, self.seed)

    def returns(self, start, end) -> pd.DataFrame:
        wide = self.panel(end).returns.loc[pd.Timestamp(start) :]
        return to_long(wide)

    def observables(self, start, end) -> pd.DataFrame:
        obs = self.panel(end).observables.loc[pd.Timestamp(start) :]
        obs = obs.rename_axis("date").reset_index()
        obs["regime"] = obs["regime"].astype("int64")
        return obs[OBSERVABLE_COLUMNS]

    def sectors(self) -> pd.Series:
        return self.panel(pd.Timestamp(self.start) + pd.Timedelta(days=14)).sectors

    def oracle_covariance(self, date, tickers: list[str]) -> np.ndarray:
        panel = self.panel(date)
        cov = pd.DataFrame(
            panel.true_covariance(pd.Timestamp(date)), panel.returns.columns, panel.returns.columns
        )
        return cov.loc[tickers, tickers].to_numpy()

    def ground_truth(self, date, window: int) -> GroundTruth:
        """The truth as of trading day ``date``: the covariance's parts as of its close, the
        planted flags and the true factor returns of the ``window`` trading days up to it."""
        day = pd.Timestamp(date)
        panel = self.panel(day)
        b, fvar, idio_var = panel.covariance_parts(day)
        tickers, factors = panel.returns.columns, panel.loadings.columns
        return GroundTruth(
            loadings=pd.DataFrame(b, index=tickers, columns=factors),
            factor_var=pd.Series(fvar, index=factors),
            idio_var=pd.Series(idio_var, index=tickers),
            planted=panel.anomaly.reindex(tickers).fillna(False).astype(bool),
            factor_returns=panel.factors.loc[:day].tail(window),
        )

    def planted_anomalies(self) -> pd.Series:
        return self.panel(pd.Timestamp(self.start) + pd.Timedelta(days=14)).anomaly

    def true_factors(self, start, end) -> pd.DataFrame:
        return self.panel(end).factors.loc[pd.Timestamp(start) :]

    def first_date(self) -> None:
        return None  # generated on demand from the configured start

    def last_date(self) -> None:
        return None  # generated up to any day asked for

    def observables_report(self) -> dict:
        return {
            "observable_market": "synthetic truth",
            "observable_volatility": "synthetic VIX",
            "observable_macro_slope": "synthetic term spread",
        }
