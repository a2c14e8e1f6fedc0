"""Reconstruction-error anomalies and whether they precede idiosyncratic drawdowns.

Inputs are arrays (standardised returns and their reconstructions), never a torch model.

The naive test (top 20 % by error vs the rest, mean later drawdown) is confounded: a stock with a
large idiosyncratic volatility is both hard to reconstruct from common factors and prone to deep
residual drawdowns, with no "anomaly" involved. The honest figure is therefore the partial
Spearman correlation of error with later drawdown depth controlling for trailing residual vol,
with a bootstrap interval over stocks.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata, spearmanr

from vae_pipeline.core.results import AnomalyTest


def reconstruction_error(
    X_std: pd.DataFrame | np.ndarray, X_hat_std: pd.DataFrame | np.ndarray
) -> pd.Series:
    """Per-stock mean squared reconstruction error over days (standardised units).

    Indexed by the columns of ``X_std`` when it is a DataFrame, else 0..N-1.
    """
    x, xhat = np.asarray(X_std, dtype=float), np.asarray(X_hat_std, dtype=float)
    if x.shape != xhat.shape or x.ndim != 2:
        raise ValueError(f"shapes differ or are not 2-D: {x.shape} vs {xhat.shape}")
    err = np.mean((x - xhat) ** 2, axis=0)
    index = X_std.columns if isinstance(X_std, pd.DataFrame) else pd.RangeIndex(x.shape[1])
    return pd.Series(err, index=index, name="reconstruction_error")


SURPRISE_DAYS = 21  # the recent days a surprise / an error change is measured over (a month)


def _recent_split(
    residuals: pd.DataFrame | np.ndarray, recent_days: int
) -> tuple[np.ndarray, pd.Index]:
    r = np.asarray(residuals, dtype=float)
    if r.ndim != 2:
        raise ValueError(f"residuals must be 2-D (days x stocks), got shape {r.shape}")
    if not 1 <= recent_days < r.shape[0]:
        raise ValueError(f"recent_days must be in [1, {r.shape[0] - 1}], got {recent_days}")
    if not np.isfinite(r).all():
        raise ValueError("residuals contain NaN or inf")
    index = residuals.columns if isinstance(residuals, pd.DataFrame) else pd.RangeIndex(r.shape[1])
    return r, index


def standardised_surprise(
    residuals: pd.DataFrame | np.ndarray,
    noise_var: pd.Series | np.ndarray,
    recent_days: int = SURPRISE_DAYS,
) -> pd.Series:
    """Mean over the last ``recent_days`` of ``residual^2 / psi_i``: each stock's recent
    reconstruction error in units of its own noise variance ``psi_i`` (a chi-square-like
    surprise, about 1 when the stock behaves as the model expects).

    ``residuals`` (days x stocks, the window's last day last) and ``noise_var`` (per stock) in
    the same units, so the score is scale-free: multiplying a stock's returns by c multiplies
    its residuals by c and its noise variance by c^2 and leaves its surprise unchanged. A stock
    that is simply volatile has a large psi, so it is not flagged for its volatility alone.
    """
    r, index = _recent_split(residuals, recent_days)
    psi = np.asarray(noise_var, dtype=float).ravel()
    if psi.shape != (r.shape[1],) or not (np.isfinite(psi).all() and (psi > 0).all()):
        raise ValueError("noise_var must be one finite positive variance per stock")
    out = np.mean(r[-recent_days:] ** 2, axis=0) / psi
    return pd.Series(out, index=index, name="surprise")


def error_change(
    residuals: pd.DataFrame | np.ndarray, recent_days: int = SURPRISE_DAYS
) -> pd.Series:
    """``log(mean recent residual^2 / mean earlier residual^2)``: the last ``recent_days``'
    reconstruction error against the stock's own trailing level (the window's earlier days).

    Scale-free (a stock's scale cancels in the ratio) and needs no model noise; the log makes a
    doubling and a halving symmetric. A stock with a zero earlier error is an error.
    """
    r, index = _recent_split(residuals, recent_days)
    recent = np.mean(r[-recent_days:] ** 2, axis=0)
    earlier = np.mean(r[:-recent_days] ** 2, axis=0)
    if not (earlier > 0).all():
        raise ValueError("a stock has a zero trailing reconstruction error")
    with np.errstate(divide="ignore"):
        out = np.log(recent / earlier)
    return pd.Series(out, index=index, name="error_change")


def market_residual_returns(returns: pd.DataFrame, market: pd.Series) -> pd.DataFrame:
    """Each stock's return less beta x market, beta from OLS (with intercept) on the given window.

    The intercept is used to estimate beta but is *kept* in the residual: a stock's own drift
    (e.g. a planted negative drift) is exactly the idiosyncratic performance to be measured, and
    subtracting a same-window alpha would erase it. Aligned on dates.
    """
    if isinstance(market, pd.Series):
        market = market.reindex(returns.index)
    m = np.asarray(market, dtype=float).ravel()
    r = returns.to_numpy(dtype=float)
    if len(m) != len(r):
        raise ValueError(f"market has {len(m)} days, returns {len(r)}")
    if not (np.isfinite(r).all() and np.isfinite(m).all()):
        raise ValueError("returns / market contain NaN or inf (or the dates do not align)")
    mc = m - m.mean()
    var = mc @ mc
    if var == 0:
        raise ValueError("market return is constant over the window; beta is undefined")
    beta = mc @ (r - r.mean(axis=0)) / var  # vectorised OLS slope for all stocks at once
    return pd.DataFrame(r - np.outer(m, beta), index=returns.index, columns=returns.columns)


def _drawdown_1d(path: np.ndarray, compound: bool) -> np.ndarray:
    """Worst drawdown per column of a (T x N) return array; path starts at wealth 1 / sum 0."""
    if compound:
        wealth = np.vstack([np.ones((1, path.shape[1])), np.cumprod(1.0 + path, axis=0)])
        return (wealth / np.maximum.accumulate(wealth, axis=0) - 1.0).min(axis=0)
    level = np.vstack([np.zeros((1, path.shape[1])), np.cumsum(path, axis=0)])
    return (level - np.maximum.accumulate(level, axis=0)).min(axis=0)


def max_drawdown(
    residual_returns: pd.DataFrame | pd.Series, compound: bool = True
) -> pd.Series | float:
    """Worst peak-to-trough drawdown (<= 0) of each stock's cumulative residual path.

    ``compound=True`` (default) compounds the daily residuals into a wealth path starting at 1
    (the value of a daily-rebalanced long-stock / short-beta-market position), so the drawdown is a
    fraction in [-1, 0]; ``compound=False`` uses the summed path. The starting point counts as a
    peak, so a loss on day one is a drawdown. Missing days count as a zero residual.
    A DataFrame gives a Series per column; a Series gives a float.
    """
    if isinstance(residual_returns, pd.Series):
        arr = residual_returns.fillna(0.0).to_numpy(dtype=float)[:, None]
        return float(_drawdown_1d(arr, compound)[0])
    arr = residual_returns.fillna(0.0).to_numpy(dtype=float)
    return pd.Series(
        _drawdown_1d(arr, compound), index=residual_returns.columns, name="max_drawdown"
    )


def flag_anomalies(errors: pd.Series, top_fraction: float = 0.2) -> pd.Series:
    """Boolean flag on the ``round(top_fraction * N)`` highest-error stocks (at least 1, at most N-1).

    Exact count, ties broken by the original order (stable sort), so the split is deterministic.
    """
    if not 0.0 < top_fraction < 1.0:
        raise ValueError(f"top_fraction must be in (0, 1), got {top_fraction}")
    values = errors.to_numpy(dtype=float)
    if not np.isfinite(values).all():
        raise ValueError("errors contain NaN or inf")
    n = len(values)
    if n < 2:
        raise ValueError("need at least 2 stocks to split into high / low error")
    n_high = min(max(int(round(top_fraction * n)), 1), n - 1)
    order = np.argsort(-values, kind="stable")
    flags = np.zeros(n, dtype=bool)
    flags[order[:n_high]] = True
    return pd.Series(flags, index=errors.index, name="anomaly")


def _partial_rank_corr(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Partial Spearman of x and y given z, row-wise over a (B x N) batch.

    Rank-transform, regress each of rank(x), rank(y) on rank(z) (OLS with intercept, closed form
    so the bootstrap is one vectorised pass), correlate the residuals. NaN for degenerate rows.
    """
    rx, ry, rz = (rankdata(a, axis=-1) for a in (x, y, z))
    rx, ry, rz = (a - a.mean(axis=-1, keepdims=True) for a in (rx, ry, rz))
    szz = (rz * rz).sum(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        ex = rx - (rx * rz).sum(axis=-1, keepdims=True) / szz * rz
        ey = ry - (ry * rz).sum(axis=-1, keepdims=True) / szz * rz
        return (ex * ey).sum(axis=-1) / np.sqrt((ex * ex).sum(axis=-1) * (ey * ey).sum(axis=-1))


def anomaly_test(
    errors: pd.Series,
    future_residual_returns: pd.DataFrame,
    trailing_residual_vol: pd.Series,
    planted: pd.Series | None = None,
    top_fraction: float = 0.2,
    n_boot: int = 1000,
    seed: int = 42,
) -> AnomalyTest:
    """Do high-error stocks (training window) suffer worse residual drawdowns afterwards?

    ``errors``: per-stock reconstruction error from the training window;
    ``future_residual_returns``: market-residual daily returns over the following window;
    ``trailing_residual_vol``: per-stock residual vol over the training window (the confounder);
    ``planted``: the true anomaly flags on synthetic data (None on real data).

    Stocks present in all inputs are used. Correlations are signed so that positive means higher
    error goes with the planted flag / a *deeper* later drawdown (Spearman with -drawdown).
    The interval is the 2.5-97.5 % percentile interval of the partial rank correlation over
    ``n_boot`` resamples of stocks with replacement.
    """
    tickers = errors.index.intersection(future_residual_returns.columns).intersection(
        trailing_residual_vol.index
    )
    if len(tickers) < 5:
        raise ValueError(f"only {len(tickers)} stocks common to all inputs; need at least 5")
    err = errors.loc[tickers].astype(float)
    vol = trailing_residual_vol.loc[tickers].to_numpy(dtype=float)
    dd = max_drawdown(future_residual_returns[tickers]).to_numpy()
    if not (np.isfinite(err).all() and np.isfinite(vol).all()):
        raise ValueError("errors / trailing_residual_vol contain NaN or inf")

    flags = flag_anomalies(err, top_fraction).to_numpy()
    depth = -dd  # positive = deeper drawdown

    rho_planted = None
    if planted is not None:
        p = planted.reindex(tickers, fill_value=False).astype(float).to_numpy()
        if np.ptp(p) > 0:  # undefined when no (or every) stock is planted
            rho_planted = float(spearmanr(err.to_numpy(), p).statistic)

    e = err.to_numpy()
    partial = float(_partial_rank_corr(e, depth, vol))
    if not np.isfinite(partial):
        raise ValueError("partial rank correlation undefined (constant errors, drawdowns or vol)")
    idx = np.random.default_rng(seed).integers(0, len(e), size=(n_boot, len(e)))
    boot = _partial_rank_corr(e[idx], depth[idx], vol[idx])
    lo, hi = np.nanpercentile(boot, [2.5, 97.5])

    return AnomalyTest(
        error_vs_anomaly_rho=rho_planted,
        high_error_mean_dd=float(dd[flags].mean()),
        low_error_mean_dd=float(dd[~flags].mean()),
        partial_rho_given_idio_vol=float(np.clip(partial, -1.0, 1.0)),
        partial_rho_ci=(float(np.clip(lo, -1.0, 1.0)), float(np.clip(hi, -1.0, 1.0))),
        n_high=int(flags.sum()),
        n_low=int((~flags).sum()),
    )
