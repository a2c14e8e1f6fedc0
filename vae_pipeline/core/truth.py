"""The ground truth of a synthetic day: what the oracle, the factor recovery and the planted
anomalies are measured against, in a form that stores as rows (O(N K), never N x N).

The covariance of day d+1's returns given the close of d is ``B diag(f) B' + diag(u)``
(loadings ``B``, factor variances ``f``, idiosyncratic variances ``u``), so the truth of a day is
those three pieces, the planted anomaly flags and the day's true factor returns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

TRUTH_COLUMNS = ["ticker", "item", "value"]
# items of a stock row; a factor's rows carry the factor's name in ``ticker``
LOADING, IDIO_VAR, PLANTED = "loading:", "idio_var", "planted"
FACTOR_VAR, FACTOR_RETURN = "factor_var", "factor_return"


@dataclass(frozen=True)
class GroundTruth:
    """One day's truth: loadings (tickers x factors), factor and idiosyncratic variances, the
    planted flags and the day's factor returns."""

    loadings: pd.DataFrame
    factor_var: pd.Series
    idio_var: pd.Series
    planted: pd.Series
    factor_returns: pd.Series

    def covariance(self, tickers: list[str]) -> np.ndarray:
        """The true covariance of ``tickers`` (N x N, symmetric)."""
        b = self.loadings.loc[tickers].to_numpy()
        cov = (b * self.factor_var.reindex(self.loadings.columns).to_numpy()) @ b.T
        cov += np.diag(self.idio_var.loc[tickers].to_numpy())
        return (cov + cov.T) / 2

    def to_rows(self) -> pd.DataFrame:
        """Long rows (ticker, item, value)."""
        loadings = self.loadings.stack().rename("value").reset_index()
        loadings.columns = ["ticker", "factor", "value"]
        parts = [
            pd.DataFrame(
                {
                    "ticker": loadings["ticker"],
                    "item": LOADING + loadings["factor"].astype(str),
                    "value": loadings["value"],
                }
            ),  # fmt: skip
            _rows(self.idio_var, IDIO_VAR),
            _rows(self.planted.astype(float), PLANTED),
            _rows(self.factor_var, FACTOR_VAR),
            _rows(self.factor_returns, FACTOR_RETURN),
        ]
        return pd.concat(parts, ignore_index=True)[TRUTH_COLUMNS]

    @classmethod
    def from_rows(cls, rows: pd.DataFrame) -> GroundTruth:
        """The inverse of :meth:`to_rows` (one day's rows)."""
        item = rows["item"].astype(str)
        load = rows[item.str.startswith(LOADING)].assign(
            factor=lambda f: f["item"].str[len(LOADING) :]
        )
        loadings = load.pivot(index="ticker", columns="factor", values="value")
        series = {
            name: rows[item == name].set_index("ticker")["value"].rename(None)
            for name in (IDIO_VAR, PLANTED, FACTOR_VAR, FACTOR_RETURN)
        }
        factors = list(series[FACTOR_VAR].index)
        return cls(
            loadings=loadings[factors].rename_axis(index=None, columns=None),
            factor_var=series[FACTOR_VAR],
            idio_var=series[IDIO_VAR],
            planted=series[PLANTED].astype(bool),
            factor_returns=series[FACTOR_RETURN],
        )


def _rows(values: pd.Series, item: str) -> pd.DataFrame:
    return pd.DataFrame(
        {"ticker": values.index.astype(str), "item": item, "value": values.to_numpy(dtype=float)}
    )


def factor_returns_from_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """The true factor returns (date x factor) of a window of stored truth rows."""
    found = rows[rows["item"] == FACTOR_RETURN]
    wide = found.pivot(index="date", columns="ticker", values="value")
    return wide.rename_axis(index=None, columns=None).sort_index()
