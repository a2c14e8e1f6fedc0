"""The ground truth of a synthetic day: what the oracle, the factor recovery and the planted
anomalies are measured against, in a form that stores as rows (O(N K + W K), never N x N).

The covariance of day d+1's returns given the close of d is ``B diag(f) B' + diag(u)``
(loadings ``B``, factor variances ``f``, idiosyncratic variances ``u``). The truth *as of* d is
those three pieces, the planted anomaly flags, and the true factor returns of the trailing
window that day's analysis reads, so one partition holds everything measured against it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TRUTH_COLUMNS = ["obs_date", "ticker", "item", "value"]
# items of a stock row; a factor's rows carry the factor's name in ``ticker``, and its returns
# their observation date in ``obs_date`` (null elsewhere)
LOADING, IDIO_VAR, PLANTED = "loading:", "idio_var", "planted"
FACTOR_VAR, FACTOR_RETURN = "factor_var", "factor_return"


@dataclass(frozen=True)
class GroundTruth:
    """The truth as of one day: loadings (tickers x factors), factor and idiosyncratic
    variances, the planted flags and the factor returns of the trailing window (date x factor)."""

    loadings: pd.DataFrame
    factor_var: pd.Series
    idio_var: pd.Series
    planted: pd.Series
    factor_returns: pd.DataFrame

    def covariance(self, tickers: list[str]) -> np.ndarray:
        """The true covariance of ``tickers`` (N x N, symmetric)."""
        b = self.loadings.loc[tickers].to_numpy()
        cov = (b * self.factor_var.reindex(self.loadings.columns).to_numpy()) @ b.T
        cov += np.diag(self.idio_var.loc[tickers].to_numpy())
        return (cov + cov.T) / 2

    def to_rows(self) -> pd.DataFrame:
        """Long rows (obs_date, ticker, item, value)."""
        tickers = self.loadings.index.astype(str).to_numpy()
        factors = self.loadings.columns.astype(str).to_numpy()
        returns = self.factor_returns
        stock_rows = pd.DataFrame(
            {
                "ticker": np.concatenate([np.repeat(tickers, len(factors)), tickers, tickers]),
                "item": np.concatenate(
                    [
                        np.tile(np.char.add(LOADING, factors), len(tickers)),
                        np.full(len(tickers), IDIO_VAR),
                        np.full(len(tickers), PLANTED),
                    ]
                ),  # fmt: skip
                "value": np.concatenate(
                    [
                        self.loadings.to_numpy(dtype=float).ravel(),
                        self.idio_var.reindex(tickers).to_numpy(dtype=float),
                        self.planted.reindex(tickers).to_numpy(dtype=float),
                    ]
                ),  # fmt: skip
            }
        )
        factor_var = pd.DataFrame(
            {"ticker": factors, "item": FACTOR_VAR, "value": self.factor_var.reindex(factors)}
        )
        factor_returns = pd.DataFrame(
            {
                "obs_date": np.repeat(returns.index.to_numpy(), returns.shape[1]),
                "ticker": np.tile(returns.columns.astype(str), len(returns)),
                "item": FACTOR_RETURN,
                "value": returns.to_numpy(dtype=float).ravel(),
            }
        )
        frame = pd.concat([stock_rows, factor_var, factor_returns], ignore_index=True)
        return frame.assign(obs_date=pd.to_datetime(frame["obs_date"]))[TRUTH_COLUMNS]

    @classmethod
    def from_rows(cls, rows: pd.DataFrame) -> GroundTruth:
        """The inverse of :meth:`to_rows` (one day's rows)."""
        item = rows["item"].astype(str)
        load = rows[item.str.startswith(LOADING)]
        load = load.assign(factor=load["item"].str[len(LOADING) :])
        loadings = load.pivot(index="ticker", columns="factor", values="value")
        series = {
            name: rows[item == name].set_index("ticker")["value"].rename(None)
            for name in (IDIO_VAR, PLANTED, FACTOR_VAR)
        }
        factors = list(series[FACTOR_VAR].index)
        returns = rows[item == FACTOR_RETURN].pivot(
            index="obs_date", columns="ticker", values="value"
        )
        return cls(
            loadings=loadings[factors].rename_axis(index=None, columns=None),
            factor_var=series[FACTOR_VAR],
            idio_var=series[IDIO_VAR],
            planted=series[PLANTED].astype(bool),
            factor_returns=returns[factors].rename_axis(index=None, columns=None).sort_index(),
        )
